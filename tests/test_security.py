"""Safe to point at anything: private addresses on every hop, secrets redacted, page strings
escaped, TLS verified unless `--insecure` says otherwise, robots.txt and Crawl-delay honoured.

Everything here is loopback, so "a public host that redirects to a private one" is built with an
injected resolver (`Fetcher(resolver=...)`): the address check believes what it is told, and the
connection-time guard of the aiohttp transport checks the real answer.
"""

from __future__ import annotations

import base64
import itertools
import json
import logging
import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from markdown_it import MarkdownIt

import crawler.robots
from crawler.alerts import alert_message, alert_text, send_webhooks
from crawler.classify import classify_result
from crawler.config import FetchSettings, load_settings
from crawler.crawl import run_crawl
from crawler.fetch import Fetcher, PrivateAddressError, PublicOnlyResolver, map_exception
from crawler.history import alert_events
from crawler.model import Failure, Flag, Hop, Node, Outcome, Relation, Snapshot, Verdict
from crawler.robots import HostPacer
from tests.hostile import (  # noqa: F401
    ANSI,
    SECRET_TOKEN,
    XSS,
    HostileServer,
    cli_env,
    hostile_fixture,
    hostile_fresh_fixture,
    run_cli,
    story_path,
)

pytestmark = pytest.mark.timeout(120)

PUBLIC = "93.184.216.34"
PRIVATE_REASON = (
    "the host is a private or local address (to check it: --allow-private,"
    " or [fetch] allow_private_networks = true)"
)
SECRETS = ("hunter2", "SEKRIT1", "SEKRIT2", "SEKRIT3", SECRET_TOKEN)


def settings_for(transport: str = "aiohttp", **overrides: Any) -> FetchSettings:
    """Private addresses refused (the default), quick timeouts, no retries."""
    values: dict[str, Any] = {
        "transport": transport,
        "retries": 0,
        "connect_timeout": 2.0,
        "read_timeout": 2.0,
        "url_timeout": 5.0,
    }
    values.update(overrides)
    return FetchSettings(**values)


def fake_dns(table: dict[str, list[str]]) -> Any:
    """A resolver for `Fetcher(resolver=...)` answering from `table`, else the real system's."""
    from crawler.fetch import resolve_host

    async def resolve(host: str, port: int | None) -> list[str]:
        if host in table:
            return table[host]
        return await resolve_host(host, port)

    return resolve


# -- private addresses -------------------------------------------------------------------------
@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/ok",
        "http://localhost:{port}/ok",
        "http://[::1]:{port}/ok",
        "http://0x7f.1:{port}/ok",  # legacy spelling of 127.0.0.1
        "http://2130706433:{port}/ok",  # the same as one number
        "http://[::ffff:127.0.0.1]:{port}/ok",
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "http://10.0.0.1/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",  # carrier-grade NAT
        "http://0.0.0.0:{port}/ok",
    ],
)
async def test_private_addresses_skipped_by_default(hostile: HostileServer, url: str) -> None:
    url = url.format(port=hostile.base_url.rsplit(":", 1)[1])
    before = len(hostile.log)
    async with Fetcher(settings_for()) as fetcher:
        result = await fetcher.fetch(url, want_body=True)
    verdict, reason = classify_result(result)
    assert result.failure is Failure.PRIVATE_ADDRESS, result
    assert verdict is Verdict.SKIPPED and reason == PRIVATE_REASON
    assert fetcher.stats.requests == 0 and len(hostile.log) == before


async def test_allow_private_networks_turns_it_off(hostile: HostileServer) -> None:
    async with Fetcher(settings_for(allow_private_networks=True)) as fetcher:
        result = await fetcher.fetch(hostile.url("/ok"))
    assert result.status_code == 200


def mock_client(seen: list[str]) -> httpx.AsyncClient:
    """A client whose fake web redirects public hosts towards private ones."""
    routes = {
        "http://news.example/a": "http://internal.example/admin",
        "http://news.example/b": "http://pivot.example/c",
        "http://pivot.example/c": "http://internal.example/admin",
        "http://news.example/d": "http://mixed.example/",
        "http://news.example/e": "http://169.254.169.254/latest/meta-data/",
        "http://news.example/f": "http://[::ffff:10.0.0.1]/",
        "http://news.example/g": "http://pivot.example/fine",
    }

    def handler(request: httpx.Request) -> httpx.Response:
        url = str(request.url)
        seen.append(url)
        if url in routes:
            return httpx.Response(302, headers={"Location": routes[url]})
        return httpx.Response(200, text="<title>ok</title>", headers={"Content-Type": "text/html"})

    return httpx.AsyncClient(transport=httpx.MockTransport(handler))


DNS = {
    "news.example": [PUBLIC],
    "pivot.example": ["93.184.216.35"],
    "internal.example": ["10.0.0.5"],
    "mixed.example": ["93.184.216.36", "127.0.0.1"],  # one bad address is enough
}


@pytest.mark.parametrize(
    ("path", "hops"),
    [("/a", 1), ("/b", 2), ("/d", 1), ("/e", 1), ("/f", 1)],
)
async def test_every_redirect_hop_is_checked(path: str, hops: int) -> None:
    seen: list[str] = []
    async with mock_client(seen) as client:
        fetcher = Fetcher(settings_for("httpx"), client=client, resolver=fake_dns(DNS))
        result = await fetcher.fetch(f"http://news.example{path}", want_body=True)
    verdict, reason = classify_result(result)
    assert result.failure is Failure.PRIVATE_ADDRESS, result
    assert verdict is Verdict.SKIPPED and reason == PRIVATE_REASON
    assert len(result.redirects) == hops and len(seen) == hops  # the private hop never asked
    assert result.redirects[0] == Hop(f"http://news.example{path}", 302)


async def test_public_hops_are_followed() -> None:
    seen: list[str] = []
    async with mock_client(seen) as client:
        fetcher = Fetcher(settings_for("httpx"), client=client, resolver=fake_dns(DNS))
        result = await fetcher.fetch("http://news.example/g", want_body=True)
    assert result.status_code == 200 and result.final_url == "http://pivot.example/fine"


async def test_redirect_to_private_over_real_sockets(hostile: HostileServer) -> None:
    # First hop "localhost" is declared public; the redirect goes to the IP literal 127.0.0.1.
    # The Fetcher's own per-hop check, alone: a plain httpx client, without the connection-time
    # guard (which would refuse localhost itself, see the rebinding tests below).
    port = hostile.base_url.rsplit(":", 1)[1]
    url = f"http://localhost:{port}/to-self-ip"
    before = hostile.hits("/ok")
    async with httpx.AsyncClient(trust_env=False) as client:
        fetcher = Fetcher(
            settings_for("httpx"), client=client, resolver=fake_dns({"localhost": [PUBLIC]})
        )
        result = await fetcher.fetch(url, want_body=True)
    assert result.failure is Failure.PRIVATE_ADDRESS and len(result.redirects) == 1
    assert hostile.hits("/to-self-ip") >= 1 and hostile.hits("/ok") == before


# -- DNS rebinding: the address connected to is checked too (both transports) ---------------
@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_rebinding_is_refused_at_connection_time(
    hostile: HostileServer, transport: str
) -> None:
    # The check sees a public address; the connection would go to 127.0.0.1.
    port = hostile.base_url.rsplit(":", 1)[1]
    path = f"/ok?rebind={transport}"
    fetcher = Fetcher(settings_for(transport), resolver=fake_dns({"localhost": [PUBLIC]}))
    async with fetcher:
        result = await fetcher.fetch(f"http://localhost:{port}{path}", want_body=True)
    verdict, reason = classify_result(result)
    assert result.failure is Failure.PRIVATE_ADDRESS, result
    assert verdict is Verdict.SKIPPED and reason == PRIVATE_REASON
    assert "127.0.0.1" in (result.detail or "") or "::1" in (result.detail or "")
    assert hostile.hits(path) == 0


async def test_rebinding_guard_is_off_when_private_is_allowed(hostile: HostileServer) -> None:
    port = hostile.base_url.rsplit(":", 1)[1]
    url = f"http://localhost:{port}/ok?rebind=2"
    settings = settings_for("aiohttp", allow_private_networks=True)
    async with Fetcher(settings) as fetcher:
        result = await fetcher.fetch(url, want_body=True)
    assert result.status_code == 200 and hostile.hits("/ok?rebind=2") == 1


class TableResolver(AbstractResolver):
    """An aiohttp resolver answering from a table."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[ResolveResult]:
        """The table's addresses for `host`."""
        return [
            ResolveResult(hostname=host, host=a, port=port, family=2, proto=0, flags=0)
            for a in self.table[host]
        ]

    async def close(self) -> None:
        """Nothing to release."""


async def test_public_only_resolver() -> None:
    guard = PublicOnlyResolver(TableResolver(DNS))
    assert [r["host"] for r in await guard.resolve("news.example", 80)] == [PUBLIC]
    for host in ("internal.example", "mixed.example"):
        with pytest.raises(PrivateAddressError) as caught:
            await guard.resolve(host, 80)
        assert map_exception(caught.value)[0] is Failure.PRIVATE_ADDRESS
    await guard.close()


def test_cli_skips_private_addresses_by_default(tmp_path: Path, hostile: HostileServer) -> None:
    article = tmp_path / "article.txt"
    article.write_text(f"{hostile.url('/ok?cli=1')}\n{hostile.url('/huge?cli=1')}\n")
    denied = run_cli(["crawl", str(article), "--format", "json", "--no-store"], tmp_path)
    assert denied.returncode == 0, denied.stderr
    children = json.loads(denied.stdout)["root"]["children"]
    assert [(c["verdict"], c["reason"]) for c in children] == [("skipped", PRIVATE_REASON)] * 2
    assert hostile.hits("/ok?cli=1") == 0 and hostile.hits("/huge?cli=1") == 0
    allowed = run_cli(
        ["crawl", str(article), "--format", "json", "--no-store", "--allow-private"], tmp_path
    )
    assert allowed.returncode == 0, allowed.stderr
    assert hostile.hits("/ok?cli=1") == 1


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_credentials_in_a_link_are_sent_as_basic_auth(
    hostile_fresh: HostileServer, transport: str
) -> None:
    url = hostile_fresh.url("/ok").replace("http://", "http://user:pa%20ss@")
    settings = settings_for(transport, allow_private_networks=True)
    async with Fetcher(settings) as fetcher:
        result = await fetcher.fetch(url)
    assert result.status_code == 200 and result.url == url, result  # aiohttp used to raise here
    token = base64.b64encode(b"user:pa ss").decode()
    assert hostile_fresh.authorizations == [f"Basic {token}"]


# -- secrets are redacted everywhere ---------------------------------------------------------
@pytest.fixture
def secret_article(tmp_path: Path, hostile: HostileServer) -> Path:
    """An article citing URLs with credentials and secret query values."""
    host = hostile.base_url.removeprefix("http://")
    path = tmp_path / "secrets.html"
    path.write_text(
        f'<a href="http://user:hunter2@{host}/secret?token=SEKRIT1&api_key=SEKRIT2&page=2">a</a>'
        f'<a href="{hostile.url("/to-secret")}">see http://x.invalid/?password=SEKRIT3</a>'
        f'<a href="http://ops:hunter2@{host}/missing?sig=SEKRIT1">gone</a>'
    )
    return path


@pytest.mark.parametrize("fmt", ["json", "markdown", "tree"])
def test_secrets_redacted_in_every_format(
    tmp_path: Path, secret_article: Path, hostile: HostileServer, fmt: str
) -> None:
    done = run_cli(
        ["crawl", str(secret_article), "--allow-private", "--format", fmt, "--depth", "0"],
        tmp_path,
    )
    assert done.returncode == 2, done.stderr  # /missing is dead
    assert "/secret" in done.stdout and "***" in done.stdout.replace("\\", "")  # Markdown: \*
    for secret in SECRETS:
        assert secret not in done.stdout and secret not in done.stderr, (secret, fmt)
    shown = run_cli(["show", "1", "--format", fmt], tmp_path)  # the stored snapshot, again
    assert shown.returncode == 0 and "/secret" in shown.stdout
    assert not any(secret in shown.stdout for secret in SECRETS)


def _alerting_snapshot() -> Snapshot:
    """A snapshot with a newly dead link carrying credentials and secret parameters."""
    root = Node("article.html", "article.html", Relation.ROOT, 0, verdict=Verdict.OK)
    url = "https://user:hunter2@news.example/story?token=SEKRIT1&page=2"
    dead = Node(url, url, Relation.REFERENCE, 1, key=1, parent_key=0, verdict=Verdict.DEAD)
    dead.reason = "404 Not Found"
    dead.flags = [Flag.DEAD.value, Flag.NEWLY_DEAD.value]
    moved = Node(
        "https://news.example/a?api_key=SEKRIT2", "x", Relation.REFERENCE, 1, key=2, parent_key=0
    )
    moved.verdict, moved.flags = Verdict.OK, [Flag.RECOVERED.value]
    root.children = [dead, moved]
    return Snapshot(
        "https://ops:hunter2@cms.example/a?sessionid=SEKRIT3",
        datetime(2025, 1, 1, tzinfo=UTC),
        root,
        outcome=Outcome.COMPLETE,
        snapshot_id=7,
    )


async def test_secrets_redacted_in_alerts_and_their_log(
    caplog: pytest.LogCaptureFixture, hostile: HostileServer
) -> None:
    snapshot = _alerting_snapshot()
    events = alert_events(snapshot)
    assert len(events) == 2
    message = json.dumps(alert_message(snapshot, events, datetime(2025, 1, 1, tzinfo=UTC)))
    title, body = alert_text(snapshot, events)
    hook = hostile.url("/hook/SEKRIT-PATH?token=SEKRIT1").replace("http://", "http://u:hunter2@")
    with caplog.at_level(logging.INFO, logger="crawler.alerts"):
        results = await send_webhooks(snapshot, events, [hook], attempts=1, backoff=0)
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert results and not results[0].ok and "webhook" in logged  # 404: logged, not raised
    for text in (message, title, body, logged, repr(results)):
        assert "news.example" in text or "127.0.0.1" in text or text is title
        for secret in (*SECRETS, "SEKRIT-PATH"):
            assert secret not in text, (secret, text)


# -- page-controlled strings are escaped -----------------------------------------------------
@pytest.fixture
def xss_article(tmp_path: Path, hostile: HostileServer) -> Path:
    """An article citing pages whose titles attack the report, and a URL that does too."""
    path = tmp_path / "xss.html"
    path.write_text(
        f'<a href="{hostile.url("/xss")}">{XSS.replace("<", "&lt;")}</a>'
        f'<a href="{hostile.url("/ansi")}">ansi</a>'
        f'<a href="{hostile.url("/ok")}?q=<script>alert(2)</script>">q</a>'
    )
    return path


def _crawl_output(tmp_path: Path, article: Path, fmt: str) -> str:
    done = run_cli(
        ["crawl", str(article), "--allow-private", "--format", fmt, "--no-store", "--depth", "1"],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_markdown_report_runs_no_script(tmp_path: Path, xss_article: Path) -> None:
    out = _crawl_output(tmp_path, xss_article, "markdown")
    html = MarkdownIt("commonmark").render(out)
    assert "alert(1)" in html and "alert(2)" in html  # shown, as text
    assert "<script" not in html.lower() and "\x1b" not in out and "\u202e" not in out


def test_tree_report_carries_no_terminal_escapes(tmp_path: Path, xss_article: Path) -> None:
    out = _crawl_output(tmp_path, xss_article, "tree")
    assert XSS in out  # plain text in a terminal: shown as written, inert
    assert "RED" in out and "\x1b" not in out and "\x07" not in out and "\u202e" not in out


def test_json_report_keeps_titles_as_data(tmp_path: Path, xss_article: Path) -> None:
    data = json.loads(_crawl_output(tmp_path, xss_article, "json"))
    titles = [child["title"] for child in data["root"]["children"]]
    assert titles[0] == XSS  # JSON carries the data exactly; consumers escape on display


def test_json_report_is_safe_to_embed_in_html(tmp_path: Path, xss_article: Path) -> None:
    out = _crawl_output(tmp_path, xss_article, "json")
    assert "<script" not in out.lower()


# -- TLS -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileServer]:
    """A HostileServer over HTTPS with a self-signed certificate for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with HostileServer(ssl_context=context) as server:
        yield server


@pytest.mark.parametrize("transport", ["aiohttp", "httpx"])
async def test_tls_is_verified_by_default(tls_server: HostileServer, transport: str) -> None:
    url = tls_server.url("/ok")
    async with Fetcher(settings_for(transport, allow_private_networks=True)) as fetcher:
        refused = await fetcher.fetch(url)
    verdict, reason = classify_result(refused)
    assert refused.failure is Failure.TLS and verdict is Verdict.ERROR and "TLS" in (reason or "")
    insecure = settings_for(transport, allow_private_networks=True, verify_tls=False)
    async with Fetcher(insecure) as fetcher:
        accepted = await fetcher.fetch(url)
    assert accepted.status_code == 200


def test_insecure_is_explicit_and_reported(tmp_path: Path, tls_server: HostileServer) -> None:
    article = tmp_path / "tls.txt"
    article.write_text(tls_server.url("/ok") + "\n")
    base = ["crawl", str(article), "--allow-private", "--no-store"]
    verified = run_cli([*base, "--format", "json"], tmp_path)
    data = json.loads(verified.stdout)
    assert "insecure" not in data and data["root"]["children"][0]["verdict"] == "error"
    insecure = run_cli([*base, "--insecure", "--format", "json"], tmp_path)
    data = json.loads(insecure.stdout)
    assert data["insecure"] is True and data["root"]["children"][0]["verdict"] == "ok"
    tree = run_cli([*base, "--insecure", "--format", "tree"], tmp_path).stdout
    assert "insecure" in tree.lower() and "TLS not verified" in tree
    markdown = run_cli([*base, "--insecure", "--format", "markdown"], tmp_path).stdout
    assert "**Insecure:**" in markdown


# -- robots.txt and Crawl-delay for related pages ---------------------------------------------
def _robots_settings(tmp_path: Path) -> Any:
    return load_settings(
        None,
        environ={"CRAWLER_CONFIG": ""},
        overrides={
            "fetch": {"allow_private_networks": True, "retries": 0, "url_timeout": 5.0},
            "crawl": {"depth": 1},
            "store": {"data_dir": str(tmp_path / "data")},
        },
    )


def _story_gaps(server: HostileServer) -> list[float]:
    times = sorted(server.times("/story/"))
    return [later - earlier for earlier, later in itertools.pairwise(times)]


async def test_robots_and_crawl_delay_for_related_pages(
    tmp_path: Path, hostile_fresh: HostileServer
) -> None:
    server = hostile_fresh
    server.robots_txt = f"User-agent: *\nCrawl-delay: 1\nDisallow: {story_path(3)}\n"
    article = tmp_path / "a.txt"
    article.write_text(server.url("/hub?n=4") + "\n")
    snap = await run_crawl(str(article), _robots_settings(tmp_path))
    related = {n.url: n for n in snap.root.children[0].children}
    assert len(related) == 4
    blocked = related[server.url(story_path(3))]
    assert blocked.verdict is Verdict.SKIPPED and blocked.reason == "disallowed by robots.txt"
    assert server.hits(story_path(3)) == 0 and server.hits("/robots.txt") == 1
    assert [related[server.url(story_path(i))].verdict for i in (1, 2, 4)] == [Verdict.OK] * 3
    gaps = _story_gaps(server)
    assert len(gaps) == 2 and min(gaps) >= 0.9, gaps  # 1 s apart (timer slack allowed)


async def test_crawl_delay_is_capped(
    tmp_path: Path, hostile_fresh: HostileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(crawler.robots, "MAX_CRAWL_DELAY", 0.4)
    server = hostile_fresh
    server.robots_txt = "User-agent: *\nCrawl-delay: 3600\n"
    article = tmp_path / "a.txt"
    article.write_text(server.url("/hub?n=3") + "\n")
    started = time.monotonic()
    snap = await run_crawl(str(article), _robots_settings(tmp_path))
    assert time.monotonic() - started < 10  # an hour asked, 0.4 s given
    assert all(n.verdict is Verdict.OK for n in snap.root.children[0].children)
    gaps = _story_gaps(server)
    assert len(gaps) == 2 and all(0.35 <= gap < 2 for gap in gaps), gaps


def test_host_pacer_spaces_starts() -> None:
    now = [100.0]
    pacer = HostPacer(cap=5.0, clock=lambda: now[0])
    url = "http://news.example/a"
    assert pacer.reserve(url, None) == 0.0 and pacer.reserve(url, 0.0) == 0.0
    assert pacer.reserve(url, 2.0) == 0.0  # first request: no wait
    assert pacer.reserve(url, 2.0) == 2.0 and pacer.reserve(url, 2.0) == 4.0  # booked in turn
    assert pacer.reserve("http://other.example/", 2.0) == 0.0  # per host
    assert pacer.reserve(url, 3600.0) == 9.0  # capped at 5 s after the last booking (t=104)
    assert pacer.reserve(url, float("inf")) == 0.0  # nonsense is ignored
    pacer.record("http://fresh.example/robots.txt")
    now[0] += 1.0
    assert pacer.reserve("http://fresh.example/story", 2.0) == 1.0  # counted from robots.txt
