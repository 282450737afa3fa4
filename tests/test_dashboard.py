"""The dashboard: the real `crawler serve` on 127.0.0.1 (random port) over a real SQLite store
filled by running real watches against the fake site."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import re
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from warcio.archiveiterator import ArchiveIterator

from crawler.crawl import run_crawl
from crawler.fetch import Fetcher
from crawler.store import Store
from crawler.store.watches import add_watch, get_watch
from crawler.watching import run_watch
from tests.fakesite import FakeSite
from tests.test_crawl import fast_settings
from tests.test_report_formats import Elements

REPO = Path(__file__).resolve().parents[1]
TOKEN = "s3cret-token"
HOSTILE_SOURCE = 'http://evil.example/"><script>alert(1)</script><img src=x onerror=alert(2)>'
START_TIMEOUT = 20.0


@dataclass
class Filled:
    """What the module's store holds."""

    data_dir: Path
    base: str  # the fake site's base URL
    watch_id: int
    idle_watch_id: int
    watched: list[int]  # the watch's snapshot ids, oldest first
    adhoc: int


def server_env(data_dir: Path, token: str | None) -> dict[str, str]:
    """Environment for a dashboard process: its own store, loopback fetching, maybe a token."""
    env = {
        **os.environ,
        "CRAWLER_CONFIG": "",
        "CRAWLER_STORE_DATA_DIR": str(data_dir),
        "CRAWLER_FETCH_ALLOW_PRIVATE_NETWORKS": "true",
        "CRAWLER_FETCH_BACKOFF_BASE": "0.01",
        "CRAWLER_FETCH_BACKOFF_MAX": "0.05",
    }
    env.pop("CRAWLER_DASHBOARD_TOKEN", None)
    if token is not None:
        env["CRAWLER_DASHBOARD_TOKEN"] = token
    return env


@contextlib.contextmanager
def dashboard(data_dir: Path, token: str | None = None) -> Iterator[str]:
    """Run `crawler serve --port 0`, yield its base URL, stop it with SIGTERM (must exit 0)."""
    command = [sys.executable, "-m", "crawler", "serve", "--host", "127.0.0.1", "--port", "0"]
    proc = subprocess.Popen(
        command, env=server_env(data_dir, token), cwd=REPO, stderr=subprocess.PIPE, text=True
    )
    assert proc.stderr is not None
    try:
        url = _wait_for_url(proc)
        yield url.rstrip("/")
    finally:
        proc.terminate()
        try:
            code = proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
            raise
        proc.stderr.close()
    assert code == 0


def _wait_for_url(proc: subprocess.Popen[str]) -> str:
    """The URL the server prints once it listens (bounded wait)."""
    assert proc.stderr is not None
    deadline = time.monotonic() + START_TIMEOUT
    seen = ""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([proc.stderr], [], [], 0.2)
        if ready:
            line = proc.stderr.readline()
            seen += line
            found = re.search(r"http://127\.0\.0\.1:\d+/", line)
            if found:
                return found.group(0)
        if proc.poll() is not None:
            break
    raise AssertionError(f"dashboard did not start: {seen!r}")


async def _watch_runs(store: Store, settings: object, watch_id: int, site: FakeSite) -> list[int]:
    """Three runs: target.html answers, then 404s twice (so it becomes dead)."""
    ids: list[int] = []
    for status in (None, 404, 404):
        site.set_status("/news/target.html", status)
        watch = get_watch(store, watch_id)
        assert watch is not None
        async with Fetcher(settings.fetch) as fetcher:  # type: ignore[attr-defined]
            run = await run_watch(watch, settings, store, fetcher)  # type: ignore[arg-type]
        assert run.snapshot_id is not None, run.error
        ids.append(run.snapshot_id)
    site.set_status("/news/target.html", None)
    return ids


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory, fake_site_module: FakeSite) -> Filled:
    """A store with one watch run three times, one never run, one hostile and an ad-hoc crawl."""
    tmp = tmp_path_factory.mktemp("dashboard")
    site = fake_site_module
    article = tmp / "watched.txt"
    refs = ("/news/target.html", "/dead", "/redirect/2", "/canon-a.html", "/forbidden")
    article.write_text("".join(f"{site.url(p)}\n" for p in refs))
    settings = fast_settings(tmp, depth=0)
    now = datetime.now(UTC)
    with Store.open(settings.store.url()) as store:
        watch = add_watch(store, str(article), now=now, every=timedelta(hours=1))
        idle = add_watch(store, site.url("/news/article-1.html"), now=now, every=timedelta(days=1))
        add_watch(store, HOSTILE_SOURCE, now=now + timedelta(days=1), every=timedelta(days=1))
        watched = asyncio.run(_watch_runs(store, settings, watch.watch_id, site))
        adhoc = asyncio.run(run_crawl(str(article), settings, store=store)).snapshot_id
    assert adhoc is not None
    return Filled(tmp / "data", site.base_url, watch.watch_id, idle.watch_id, watched, adhoc)


@pytest.fixture(scope="module")
def server(filled: Filled) -> Iterator[str]:
    """The dashboard with a token, over the filled store."""
    with dashboard(filled.data_dir, TOKEN) as url:
        yield url


def get(url: str) -> httpx.Response:
    """GET with a bounded timeout."""
    return httpx.get(url, timeout=10.0)


# -- pages ---------------------------------------------------------------------------------
def test_watches_page(server: str, filled: Filled) -> None:
    page = get(server + "/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    parsed = Elements(page.text)
    text = " ".join(parsed.text)
    assert f"#{filled.watched[-1]}" in text and "every 1h" in text and "complete" in text
    assert {"href": f"/snapshots/{filled.watched[-1]}"} in parsed.with_tag("a")
    assert "due" in text  # the never-run watch is due now
    assert [f.get("id") for f in parsed.with_tag("form")] == ["add-watch", "run-now"]
    # The hostile source is shown as text, never as markup.
    assert HOSTILE_SOURCE in text
    assert not parsed.with_tag("script") and not parsed.with_tag("img")


def test_security_headers(server: str) -> None:
    headers = get(server + "/").headers
    assert "script-src 'sha256-" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_snapshots_list_and_tree_with_timeline(server: str, filled: Filled) -> None:
    listing = Elements(get(server + "/snapshots").text)
    links = {a.get("href") for a in listing.with_tag("a")}
    assert {f"/snapshots/{i}" for i in [*filled.watched, filled.adhoc]} <= links
    tree = get(f"{server}/snapshots/{filled.watched[-1]}")
    parsed = Elements(tree.text)
    items = [a for a in parsed.with_tag("li") if a.get("class") == "node"]
    assert len(items) == 6  # the article and its five references
    labels = [a.get("aria-label") for a in parsed.with_tag("span") if a.get("class") == "timeline"]
    assert "3 runs: ok, error, dead" in labels  # target.html: 404 twice makes it dead
    assert "3 runs: error, dead, dead" in labels  # /dead: dead from the second run on
    # An ad-hoc crawl is not a watch: no timelines.
    adhoc = Elements(get(f"{server}/snapshots/{filled.adhoc}").text)
    assert not [a for a in adhoc.with_tag("span") if a.get("class") == "timeline"]


def test_dead_links_across_watches(server: str, filled: Filled) -> None:
    # The watch's last run says target.html is dead; the later ad-hoc crawl (it answered
    # again) does not override the watch's judgement.
    parsed = Elements(get(server + "/dead").text)
    rows = [a.get("href") for a in parsed.with_tag("a") if a.get("class") == "url"]
    dead = {h for h in rows if h and h.startswith(filled.base)}
    assert filled.base + "/news/target.html" in dead and filled.base + "/dead" in dead
    assert filled.base + "/redirect/2" not in dead
    with Store.open(f"sqlite:///{filled.data_dir / 'crawler.db'}") as store:
        runs = {i: store.load_snapshot(i).started_at for i in filled.watched}
    text = " ".join(parsed.text)
    # /dead is dead since the second run; target.html since the third.
    assert runs[filled.watched[1]].strftime("%Y-%m-%d %H:%M UTC") in text
    assert "Dead links across watched articles (2)" in text


def test_diff_of_two_snapshots(server: str, filled: Filled) -> None:
    first, last = filled.watched[0], filled.watched[-1]
    page = get(f"{server}/diff?a={first}&b={last}")
    assert page.status_code == 200
    parsed = Elements(page.text)
    changes = [a for a in parsed.with_tag("ul") if a.get("id") == "verdict-changes"]
    assert changes and "ok → dead" not in page.text  # badges, not plain words
    assert f"{filled.base}/news/target.html" in " ".join(parsed.text)
    text = get(f"{server}/diff?a={first}&b={last}&format=text").text
    assert f"~ ok -> dead: {filled.base}/news/target.html" in text
    assert get(f"{server}/diff?a={last}&b={last}").text.count("No changes.") == 1


def test_exports_and_errors(server: str, filled: Filled) -> None:
    warc = get(f"{server}/snapshots/{filled.watched[0]}/export.warc")
    assert warc.status_code == 200
    assert "attachment" in warc.headers["content-disposition"]
    types = [r.rec_type for r in ArchiveIterator(io.BytesIO(warc.content))]
    assert types[0] == "warcinfo" and "response" in types
    assert get(f"{server}/snapshots/{filled.adhoc}/export.csv").text.startswith("snapshot_id,")
    assert get(f"{server}/snapshots/{filled.adhoc}/export.pdf").status_code == 404
    assert get(f"{server}/snapshots/99999").status_code == 404
    assert get(f"{server}/diff?a=x&b=1").status_code == 400


# -- operations ------------------------------------------------------------------------------
def parse_metrics(text: str) -> dict[str, float]:
    """`name{labels}` -> value for every sample line."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_healthz_and_metrics(server: str, filled: Filled) -> None:
    health = get(server + "/healthz")
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    page = get(server + "/metrics")
    assert page.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = parse_metrics(page.text)
    # Runs before any test posted "run now": three of the watch and one ad hoc.
    assert samples['crawler_runs_total{outcome="complete"}'] == 4
    assert samples["crawler_queue_depth"] == 1  # the never-run watch; the others are not due
    assert samples['crawler_watches{state="enabled"}'] == 3
    buckets = [v for k, v in samples.items() if k.startswith("crawler_fetch_latency_seconds_b")]
    assert (
        buckets == sorted(buckets) and buckets[-1] == samples["crawler_fetch_latency_seconds_count"]
    )
    assert samples["crawler_fetch_latency_seconds_count"] >= 4 * 4  # every fetched reference
    assert samples["crawler_fetch_latency_seconds_sum"] > 0
    # Links by verdict in the watch's last snapshot: its five references.
    links = {k: v for k, v in samples.items() if k.startswith("crawler_links{")}
    assert sum(links.values()) == 5
    assert links['crawler_links{verdict="dead"}'] == 2  # target.html and /dead
    assert links['crawler_links{verdict="blocked"}'] == 1
    assert links['crawler_links{verdict="redirected"}'] == 1


def test_actions_need_the_token(server: str, filled: Filled) -> None:
    form = {"watch_id": str(filled.watch_id)}
    assert httpx.post(server + "/run", data=form, timeout=10).status_code == 403
    wrong = {**form, "token": "nope"}
    assert httpx.post(server + "/run", data=wrong, timeout=10).status_code == 403
    bad = httpx.post(server + "/watches", data={"token": TOKEN, "source": ""}, timeout=10)
    assert bad.status_code == 400


def test_add_watch_and_run_now(server: str, filled: Filled) -> None:
    added = httpx.post(
        server + "/watches",
        data={"token": TOKEN, "source": filled.base + "/news/target.html", "every": "6h"},
        timeout=10,
    )
    assert added.status_code == 303 and "added" in added.headers["location"]
    assert "every 6h" in get(server + "/").text
    before = filled.watched[-1]
    run = httpx.post(
        server + "/run",
        data={"watch_id": str(filled.watch_id)},
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert run.status_code == 303
    deadline = time.monotonic() + 30
    with Store.open(f"sqlite:///{filled.data_dir / 'crawler.db'}") as store:
        while time.monotonic() < deadline:
            watch = get_watch(store, filled.watch_id)
            assert watch is not None
            if watch.last_snapshot_id and watch.last_snapshot_id > before:
                break
            time.sleep(0.2)
        assert watch is not None and watch.last_snapshot_id and watch.last_snapshot_id > before
    assert get(server + "/run").status_code == 405


def test_read_only_without_a_token(filled: Filled) -> None:
    with dashboard(filled.data_dir) as url:
        page = Elements(get(url + "/").text)
        assert not page.with_tag("form")
        refused = httpx.post(url + "/run", data={"watch_id": "1", "token": TOKEN}, timeout=10)
        assert refused.status_code == 403 and "read-only" in refused.text


def test_healthz_reports_a_broken_database(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with Store.open(f"sqlite:///{data / 'crawler.db'}"):
        pass
    with dashboard(data) as url:
        (data / "crawler.db").write_bytes(b"this is not a database" * 100)
        for name in ("crawler.db-wal", "crawler.db-shm"):
            (data / name).unlink(missing_ok=True)
        health = get(url + "/healthz")
        assert health.status_code == 503 and health.json()["status"] == "error"
        assert get(url + "/").status_code == 503


@pytest.mark.parametrize(
    ("form", "message"),
    [
        ({"source": "file:///etc/passwd"}, "source must be an http(s) URL"),
        ({"source": "/etc/passwd"}, "source must be an http(s) URL"),
        ({"source": "https://news.example/a", "cron": "0 7 * * *"}, "cron schedules cannot"),
        ({"source": "https://news.example/a", "every": "99999999999999999999d"}, "at most 366d"),
    ],
)
def test_add_watch_refuses_what_it_cannot_honour(
    server: str, form: dict[str, str], message: str
) -> None:
    before = get(server + "/").text.count("<tr>")
    refused = httpx.post(server + "/watches", data={"token": TOKEN, **form}, timeout=10)
    assert refused.status_code == 400 and message in " ".join(Elements(refused.text).text)
    assert get(server + "/").text.count("<tr>") == before  # nothing was added


@pytest.mark.parametrize(
    ("path", "status"),
    [
        (f"/snapshots/{2**63}", 404),
        (f"/snapshots/{2**31}", 404),
        (f"/snapshots/{'9' * 5000}/export.json", 404),
        (f"/diff?a=1&b={2**64}", 404),
        ("/diff?a=1&b=%C2%B2", 400),
        (f"/snapshots?limit={'9' * 30}", 400),
    ],
)
def test_ids_beyond_the_database_range_are_not_server_errors(
    server: str, path: str, status: int
) -> None:
    assert get(server + path).status_code == status


def test_run_now_with_a_huge_id_is_a_bad_request(server: str) -> None:
    form = {"token": TOKEN, "watch_id": str(2**70)}
    assert httpx.post(server + "/run", data=form, timeout=10).status_code == 400
