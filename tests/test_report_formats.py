"""The html, csv, junit and warc formats: hostile built snapshots, real crawls of the fake site."""

from __future__ import annotations

import asyncio
import base64
import csv
import hashlib
import inspect
import io
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.cliutil import render_snapshot
from crawler.crawl import run_crawl
from crawler.model import Flag, Hop, Node, Outcome, Relation, Snapshot, Verdict
from crawler.report import (
    BINARY_FORMATS,
    FORMATS,
    render,
    render_bytes,
    render_csv,
    render_html,
    render_junit,
)
from crawler.report.html import CSP, SCRIPT_HASH, TIMELINE_POINTS
from crawler.store import HistoryEntry, Store
from tests.fakesite import FakeSite
from tests.test_crawl import fast_settings

REPO = Path(__file__).resolve().parents[1]
HOSTILE_TITLE = '<script>window.__xss=1</script>"><img src=x onerror="window.__xss=2">'
HOSTILE_URL = 'http://evil.example/"><img src=x onerror=alert(1)>?q=<script>alert(2)</script>'
HOSTILE_REASON = "404 </span><script>alert(3)</script>"
START = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)
CLI_WIRED = "store" in inspect.signature(render_snapshot).parameters
needs_cli_wiring = pytest.mark.skipif(
    not CLI_WIRED, reason="cliutil.render_snapshot does not take the store yet (wiring patch)"
)


# -- helpers -------------------------------------------------------------------------------
class Elements(HTMLParser):
    """Every start tag with its attributes, every script body and all the text, as parsed."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_script = tag == "script"

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False

    def handle_data(self, data: str) -> None:
        (self.scripts if self._in_script else self.text).append(data)

    def with_tag(self, tag: str) -> list[dict[str, str | None]]:
        """Attributes of every element named `tag`."""
        return [attrs for name, attrs in self.tags if name == tag]


def node(url: str, verdict: Verdict, key: int, **fields: object) -> Node:
    """A reference node under the root."""
    made = Node(url=url, normalized_url=url, relation=Relation.REFERENCE, depth=1, key=key)
    made.parent_key = 0
    made.verdict = verdict
    for name, value in fields.items():
        setattr(made, name, value)
    return made


def hostile_snapshot() -> Snapshot:
    """A snapshot whose page-controlled strings all try to break out of their format."""
    root = Node(url="article.txt", normalized_url="article.txt", relation=Relation.ROOT, depth=0)
    root.verdict = Verdict.OK
    root.children = [
        node(HOSTILE_URL, Verdict.DEAD, 1, title=HOSTILE_TITLE, reason=HOSTILE_REASON,
             status_code=404, flags=[Flag.DEAD.value], elapsed_ms=12.5, line=3),
        node("javascript:alert(4)", Verdict.SKIPPED, 2, reason="unsupported scheme",
             text="<b>click</b>\x1b[31m"),
        node("http://ok.example/a", Verdict.REDIRECTED, 3, status_code=200,
             final_url="http://ok.example/b", title="=HYPERLINK(\"http://x\",\"y\")",
             redirects=[Hop("http://ok.example/a", 301)]),
        node("http://ok.example/a#x", Verdict.REDIRECTED, 4, status_code=200,
             flags=[Flag.DUPLICATE.value], duplicate_of="http://ok.example/a",
             duplicate_kind="normalized", title="bell\x07 and \ufffe"),
        node("http://slow.example/", Verdict.ERROR, 5, reason="timed out after 3 attempts",
             attempts=3),
        node("http://auth.example/", Verdict.BLOCKED, 6, status_code=403, reason="refused us"),
    ]  # fmt: skip
    return Snapshot(
        source="article.txt",
        started_at=START,
        root=root,
        outcome=Outcome.COMPLETE,
        finished_at=START + timedelta(seconds=2),
        snapshot_id=7,
    )


# -- html ------------------------------------------------------------------------------------
def test_html_escapes_every_page_string() -> None:
    page = render_html(hostile_snapshot())
    parsed = Elements(page)
    assert parsed.with_tag("img") == []
    assert all(not k.startswith("on") for _, attrs in parsed.tags for k in attrs)
    assert len(parsed.scripts) == 1 and "alert" not in parsed.scripts[0]
    # The page shows the strings as text, exactly as written.
    text = "".join(parsed.text)
    assert HOSTILE_TITLE in text and "</span><script>alert(3)</script>" in text
    hrefs = [a["href"] or "" for a in parsed.with_tag("a")]
    assert hrefs and all(h.startswith(("http://", "https://", "#")) for h in hrefs)
    assert not any("javascript" in h for h in hrefs)
    assert "javascript:alert(4)" in text  # shown, not linked


def test_html_csp_allows_exactly_its_own_script() -> None:
    parsed = Elements(render_html(hostile_snapshot()))
    (meta,) = [m for m in parsed.with_tag("meta") if m.get("http-equiv")]
    assert meta["content"] == CSP and "default-src 'none'" in CSP
    (script,) = parsed.scripts
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert f"sha256-{digest}" == SCRIPT_HASH and SCRIPT_HASH in CSP
    # Self-contained: nothing is loaded from anywhere.
    assert not parsed.with_tag("link") and all("src" not in a for _, a in parsed.tags)


def test_html_nodes_verdicts_and_details() -> None:
    snap = hostile_snapshot()
    parsed = Elements(render_html(snap))
    items = [a for a in parsed.with_tag("li") if a.get("class") == "node"]
    assert len(items) == len(snap.root.walk())
    assert [a["data-verdict"] for a in items] == [n.verdict.value for n in snap.root.walk()]
    assert [a["id"] for a in items if "data-dup" in a] == ["n4"]
    text = " ".join(parsed.text)
    assert "duplicate of" in text and "(normalized)" in text
    assert "301 → 200" in text and "12 ms" in text and "3 attempts" in text
    assert "\x1b" not in text and "\x07" not in text
    # The duplicate links to the node it repeats.
    assert {"href": "#n3"} in parsed.with_tag("a")


def history(verdicts: list[Verdict], outcome: Outcome = Outcome.COMPLETE) -> list[HistoryEntry]:
    """HistoryEntry rows newest first, one day apart, ending at START."""
    count = len(verdicts)
    return [
        HistoryEntry(
            snapshot_id=i + 1,
            started_at=START - timedelta(days=count - 1 - i),
            outcome=outcome,
            verdict=verdict,
            status_code=None,
            reason=None,
        )
        for i, verdict in enumerate(verdicts)
    ][::-1]


def test_html_timeline_oldest_first_and_capped() -> None:
    snap = hostile_snapshot()
    timelines = {
        HOSTILE_URL: history([Verdict.OK, Verdict.ERROR, Verdict.DEAD]),
        "http://slow.example/": history([Verdict.OK] * (TIMELINE_POINTS + 5)),
    }
    parsed = Elements(render_html(snap, timelines=timelines))
    lines = [a for a in parsed.with_tag("span") if a.get("class") == "timeline"]
    assert len(lines) == 2
    assert lines[0]["aria-label"] == "3 runs: ok, error, dead"
    squares = [a for a in parsed.with_tag("i") if (a.get("title") or "").startswith("#")]
    assert [a["class"] for a in squares[:3]] == ["v-ok", "v-error", "v-dead"]
    assert squares[0]["title"] == "#1 2025-01-04 10:00 ok —"
    assert len(squares) == 3 + TIMELINE_POINTS


# -- csv and junit ---------------------------------------------------------------------------
def test_csv_one_row_per_node_and_formulas_defused() -> None:
    snap = hostile_snapshot()
    rows = list(csv.DictReader(io.StringIO(render_csv(snap))))
    assert len(rows) == len(snap.root.walk())
    by_key = {row["key"]: row for row in rows}
    assert by_key["1"]["title"] == HOSTILE_TITLE and by_key["1"]["verdict"] == "dead"
    assert by_key["3"]["title"].startswith("'=HYPERLINK")
    assert by_key["3"]["redirects"] == "301 http://ok.example/a"
    assert by_key["4"]["duplicate_kind"] == "normalized" and by_key["4"]["flags"] == "duplicate"
    assert by_key["5"]["attempts"] == "3" and all(r["snapshot_id"] == "7" for r in rows)


def test_junit_maps_verdicts_and_parses_back() -> None:
    snap = hostile_snapshot()
    root = ET.fromstring(render_junit(snap))
    (suite,) = root.findall("testsuite")
    cases = suite.findall("testcase")
    assert len(cases) == int(suite.get("tests", "")) == len(snap.root.walk()) - 1
    kinds = [next((c.tag for c in case if c.tag != "system-out"), "pass") for case in cases]
    assert kinds == ["failure", "skipped", "pass", "pass", "error", "skipped"]
    assert suite.get("failures") == "1" and suite.get("errors") == "1"
    assert suite.get("skipped") == "2" and root.get("tests") == "6"
    failure = cases[0].find("failure")
    assert failure is not None and failure.get("message") == f"dead 404: {HOSTILE_REASON}"
    assert cases[0].get("name") == HOSTILE_URL
    out = cases[3].find("system-out")
    assert out is not None and "bell" in (out.text or "") and "\ufffe" not in (out.text or "")
    assert cases[0].get("time") == "0.013"


def test_junit_names_repeats_uniquely() -> None:
    snap = hostile_snapshot()
    snap.root.children.append(node("http://slow.example/", Verdict.OK, 9))
    names = [c.get("name") for c in ET.fromstring(render_junit(snap)).iter("testcase")]
    assert len(names) == len(set(names)) and "http://slow.example/ [2]" in names


# -- warc ------------------------------------------------------------------------------------
def read_warc(data: bytes) -> list[tuple[str, dict[str, str], bytes, str | None]]:
    """(type, WARC headers, payload, HTTP status line) per record; digests are verified."""
    out = []
    for record in ArchiveIterator(io.BytesIO(data), check_digests="raise"):
        payload = record.content_stream().read()
        status = record.http_headers.statusline if record.http_headers else None
        out.append((record.rec_type, dict(record.rec_headers.headers), payload, status))
    return out


def test_warc_revisits_redirects_and_missing_bodies() -> None:
    bodies = {"a" * 64: b"<html>same</html>", "b" * 64: b"other"}
    snap = hostile_snapshot()
    snap.root.children = [
        node("http://x.example/1", Verdict.OK, 1, status_code=200, content_sha256="a" * 64,
             content_type="text/html", etag='"v1"\r\nSet-Cookie: x=1'),
        node("http://x.example/2", Verdict.REDIRECTED, 2, status_code=200, content_sha256="a" * 64,
             final_url="http://x.example/3", redirects=[Hop("http://x.example/2", 301)]),
        node("http://x.example/4", Verdict.OK, 3, status_code=200, content_sha256="c" * 64),
        node("http://x.example/1#top", Verdict.OK, 4, status_code=200, content_sha256="b" * 64,
             duplicate_kind="normalized", flags=[Flag.DUPLICATE.value]),
    ]  # fmt: skip
    for gzip in (True, False):
        records = read_warc(render_bytes(snap, "warc", bodies.get, gzip=gzip))
        assert [r[0] for r in records] == ["warcinfo", "response", "response", "revisit"]
        _, first, body, status = records[1]
        assert body == b"<html>same</html>" and status == "200 OK"
        assert first["WARC-Target-URI"] == "http://x.example/1"
        assert first["WARC-Date"] == "2025-01-06T10:00:00Z"
        _, hop, hop_body, hop_status = records[2]
        assert hop["WARC-Target-URI"] == "http://x.example/2" and hop_body == b""
        assert hop_status == "301 Moved Permanently"
        _, revisit, revisit_body, _ = records[3]
        assert revisit["WARC-Target-URI"] == "http://x.example/3" and revisit_body == b""
        assert revisit["WARC-Refers-To"] == first["WARC-Record-ID"]
        assert revisit["WARC-Refers-To-Target-URI"] == "http://x.example/1"
        assert revisit["WARC-Payload-Digest"] == first["WARC-Payload-Digest"]
        assert "identical-payload-digest" in revisit["WARC-Profile"]
    # The header injection attempt in the ETag stays inside one header value.
    raw = render_bytes(snap, "warc", bodies.get, gzip=False)
    assert b"\r\nSet-Cookie" not in raw


def test_render_refuses_binary_and_unknown_formats() -> None:
    snap = hostile_snapshot()
    assert {"html", "csv", "junit"} <= set(FORMATS) and BINARY_FORMATS == ("warc",)
    with pytest.raises(ValueError, match="binary"):
        render(snap, "warc")
    with pytest.raises(ValueError, match="unknown format"):
        render(snap, "pdf")
    with pytest.raises(ValueError, match="not a binary format"):
        render_bytes(snap, "csv", lambda sha: None)


# -- real crawls -----------------------------------------------------------------------------
SITE_REFS = (
    "/news/target.html", "/dead", "/gone", "/forbidden", "/flaky", "/redirect/2", "/soft404",
    "/canon-a.html", "/canon-b.html", "/redirect-final-a", "/etag.html", "/loop/a", "/dead",
)  # fmt: skip


@pytest.fixture(scope="module")
def crawled(
    tmp_path_factory: pytest.TempPathFactory, fake_site_module: FakeSite
) -> Iterator[tuple[Snapshot, Store, Path]]:
    """One real crawl (depth 1) of a text article citing the fake site, kept in a real store."""
    tmp = tmp_path_factory.mktemp("formats")
    article = tmp / "article.txt"
    article.write_text("".join(f"{fake_site_module.url(p)}\n" for p in SITE_REFS))
    settings = fast_settings(tmp, depth=1)
    with Store.open(settings.store.url()) as store:
        snapshot = asyncio.run(run_crawl(str(article), settings, store=store))
        yield snapshot, store, tmp


def test_html_of_a_real_crawl(crawled: tuple[Snapshot, Store, Path]) -> None:
    snap, _, _ = crawled
    parsed = Elements(render_html(snap))
    items = [a for a in parsed.with_tag("li") if a.get("class") == "node"]
    summary = snap.summary()
    assert len(items) == summary["nodes"]
    assert sum(1 for a in items if a["data-verdict"] == "dead") == summary["dead"] > 0
    assert sum(1 for a in items if "data-dup" in a) == summary["duplicates"] > 0
    text = " ".join(parsed.text)
    assert "Official record" in text and "307 → 302 → 200" in text
    hops = [a["href"] for a in parsed.with_tag("a") if "/redirect/" in (a.get("href") or "")]
    assert any(h and h.endswith("/redirect/2") for h in hops)


def test_csv_and_junit_of_a_real_crawl(crawled: tuple[Snapshot, Store, Path]) -> None:
    snap, _, _ = crawled
    rows = list(csv.DictReader(io.StringIO(render_csv(snap))))
    assert [r["url"] for r in rows] == [n.url for n in snap.root.walk()]
    dead = [r for r in rows if r["url"].endswith("/dead")]
    assert {r["status_code"] for r in dead} == {"404"} and dead[1]["duplicate_kind"] == "exact"
    suite = ET.fromstring(render_junit(snap)).find("testsuite")
    assert suite is not None
    summary = snap.summary()
    assert int(suite.get("failures", "")) == summary["dead"] + summary["verdict_soft404"]
    assert int(suite.get("tests", "")) == summary["nodes"] - 1


def test_warc_of_a_real_crawl(crawled: tuple[Snapshot, Store, Path]) -> None:
    snap, store, _ = crawled
    records = read_warc(render_bytes(snap, "warc", store.get_body))
    responses = {h["WARC-Target-URI"]: (body, s) for t, h, body, s in records if t == "response"}
    target = next(n for n in snap.root.walk() if n.url.endswith("/news/target.html"))
    assert target.content_sha256 is not None
    assert responses[target.url] == (store.get_body(target.content_sha256), "200 OK")
    # /canon-a.html and /canon-b.html serve the same bytes: the second is a revisit.
    revisits = [h for t, h, _, _ in records if t == "revisit"]
    assert any(h["WARC-Target-URI"].endswith("/canon-b.html") for h in revisits)
    ids = {h["WARC-Record-ID"] for _, h, _, _ in records}
    assert all(h["WARC-Refers-To"] in ids for h in revisits)
    # The redirect chain is replayable: 307 then 302 then the page.
    hops = [s for t, h, _, s in records if "/redirect/" in h.get("WARC-Target-URI", "")]
    assert hops[:2] == ["307 Temporary Redirect", "302 Found"]


# -- the CLI ---------------------------------------------------------------------------------
def cli(args: list[str], data_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run the real CLI with its own store and loopback fetching allowed (60 s at most)."""
    env = {
        **os.environ,
        "CRAWLER_CONFIG": "",
        "CRAWLER_STORE_DATA_DIR": str(data_dir),
        "CRAWLER_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
        "CRAWLER_FETCH_BACKOFF_BASE": "0.01",
        "CRAWLER_FETCH_BACKOFF_MAX": "0.05",
    }
    command = [sys.executable, "-m", "crawler", *args]
    return subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=60)


def test_cli_writes_csv_and_junit(tmp_path: Path, fake_site: FakeSite) -> None:
    article = tmp_path / "a.txt"
    article.write_text(f"{fake_site.url('/news/target.html')}\n{fake_site.url('/dead')}\n")
    for fmt in ("csv", "junit", "html"):
        out = tmp_path / f"report.{fmt}"
        done = cli(
            ["crawl", str(article), "--depth", "0", "--format", fmt, "-o", str(out)], tmp_path
        )
        assert done.returncode == 2, done.stderr  # one dead link
        assert "/dead" in out.read_text()
    ET.parse(tmp_path / "report.junit")


@needs_cli_wiring
def test_cli_warc_needs_an_output_file(tmp_path: Path) -> None:
    done = cli(["show", "1", "--format", "warc"], tmp_path)
    assert done.returncode == 3 and "-o" in done.stderr


@needs_cli_wiring
def test_cli_show_html_has_the_timeline_of_a_watch(tmp_path: Path, fake_site: FakeSite) -> None:
    from crawler.fetch import Fetcher
    from crawler.store.watches import add_watch, get_watch
    from crawler.watching import run_watch

    settings = fast_settings(tmp_path, depth=0)
    article = tmp_path / "watched.txt"
    article.write_text(f"{fake_site.url('/news/target.html')}\n{fake_site.url('/etag.html')}\n")

    async def three_runs() -> int | None:
        with Store.open(settings.store.url()) as store:
            watch = add_watch(store, str(article), now=START, every=timedelta(hours=1))
            for down in (False, True, False):
                fake_site.set_status("/news/target.html", 404 if down else None)
                async with Fetcher(settings.fetch) as fetcher:
                    current = get_watch(store, watch.watch_id)
                    assert current is not None
                    run = await run_watch(current, settings, store, fetcher)
            return run.snapshot_id

    snapshot_id = asyncio.run(three_runs())
    out = tmp_path / "report.html"
    done = cli(["show", str(snapshot_id), "--format", "html", "-o", str(out)], tmp_path / "data")
    assert done.returncode == 0, done.stderr
    labels = [a.get("aria-label") for a in Elements(out.read_text()).with_tag("span")]
    assert "3 runs: ok, error, ok" in labels  # target.html: 404 once is not yet "dead"
