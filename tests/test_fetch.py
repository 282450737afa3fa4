"""Fetcher against the fake site over real HTTP, for both transports; pure helpers on values."""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
import tracemalloc
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import httpx
import pytest

from crawler.config import FetchSettings
from crawler.fetch import Fetcher, map_exception, parse_retry_after, should_retry
from crawler.model import Failure, FetchResult, Hop
from tests.fakesite import ARTICLE, ETAG, LAST_MODIFIED, FakeSite, fake_site_fixture  # noqa: F401

pytestmark = pytest.mark.timeout(60)

CAP = 64 * 1024


def make_settings(transport: str, **overrides: Any) -> FetchSettings:
    """Quick settings for loopback tests: no backoff to speak of, short deadlines, a small cap."""
    values: dict[str, Any] = {
        "transport": transport,
        "allow_private_networks": True,
        "retries": 2,
        "backoff_base": 0.0,
        "backoff_max": 0.05,
        "connect_timeout": 2.0,
        "read_timeout": 5.0,
        "url_timeout": 10.0,
        "max_body_bytes": CAP,
        "user_agent": "fake-site-test/1.0",
    }
    values.update(overrides)
    return FetchSettings(**values)


async def fetch_one(settings: FetchSettings, url: str, **kwargs: Any) -> FetchResult:
    """Fetch one URL with a fresh Fetcher."""
    async with Fetcher(settings) as fetcher:
        return await fetcher.fetch(url, **kwargs)


class Chunks(httpx.AsyncByteStream):
    """A response body that arrives in 4 KiB pieces, as from a network (not pre-read)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for start in range(0, len(self.data), 4096):
            yield self.data[start : start + 4096]


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- plain answers ------------------------------------------------------------------------------
async def test_ok_with_body(fake_site: FakeSite, transport: str) -> None:
    url = fake_site.url(ARTICLE)
    result = await fetch_one(make_settings(transport), url, want_body=True)
    assert (result.status_code, result.method, result.failure) == (200, "GET", None)
    assert result.final_url == url and result.redirects == ()
    assert result.attempts == 1 and result.statuses == (200,)
    assert result.content_type is not None and result.content_type.startswith("text/html")
    assert result.body is not None and b"<title>Council approves" in result.body
    assert not result.truncated and result.elapsed_ms is not None and result.elapsed_ms > 0


async def test_head_first_keeps_no_body(fake_site: FakeSite, transport: str) -> None:
    result = await fetch_one(make_settings(transport), fake_site.url(ARTICLE))
    assert (result.status_code, result.method, result.body) == (200, "HEAD", None)
    assert [method for method, *_ in fake_site.requests] == ["HEAD"]


@pytest.mark.parametrize(
    ("path", "status"), [("/dead", 404), ("/gone", 410), ("/forbidden", 403), ("/auth", 401)]
)
async def test_client_errors_are_not_retried(
    fake_site: FakeSite, transport: str, path: str, status: int
) -> None:
    result = await fetch_one(make_settings(transport), fake_site.url(path))
    assert result.status_code == status and result.failure is None
    assert result.attempts == 1 and result.statuses == (status,)
    assert result.method == "GET"  # HEAD said no, GET confirmed it
    assert fake_site.hits[path] == 2


async def test_server_error_is_retried_then_returned(fake_site: FakeSite, transport: str) -> None:
    settings = make_settings(transport, retries=2, head_first=False)
    async with Fetcher(settings) as fetcher:
        result = await fetcher.fetch(fake_site.url("/error"))
    assert result.status_code == 500 and result.failure is None
    assert result.attempts == 3 and result.statuses == (500, 500, 500)
    assert fake_site.hits["/error"] == 3
    assert (fetcher.stats.requests, fetcher.stats.retries) == (3, 2)


async def test_flaky_succeeds_on_third_attempt(fake_site: FakeSite, transport: str) -> None:
    result = await fetch_one(make_settings(transport), fake_site.url("/flaky"))
    assert result.status_code == 200
    assert result.attempts == 3 and result.statuses == (503, 503, 200)


# -- Retry-After -----------------------------------------------------------------------------
async def test_retry_after_seconds_is_honoured(fake_site: FakeSite, transport: str) -> None:
    started = time.monotonic()
    result = await fetch_one(make_settings(transport), fake_site.url("/ratelimited"))
    waited = time.monotonic() - started
    assert result.status_code == 200 and result.statuses == (429, 200)
    assert waited >= 0.9  # Retry-After: 1, and backoff alone is at most 0.05 s


async def test_always_429_gives_up_with_retry_after(fake_site: FakeSite, transport: str) -> None:
    started = time.monotonic()
    result = await fetch_one(make_settings(transport, retries=1), fake_site.url("/always-429"))
    assert result.status_code == 429 and result.statuses == (429, 429)
    assert result.retry_after == 1.0
    assert time.monotonic() - started >= 0.9


async def test_retry_after_above_the_cap_is_not_waited_for(
    fake_site: FakeSite, transport: str
) -> None:
    settings = make_settings(transport, retries=1, retry_after_cap=0.5)
    started = time.monotonic()
    result = await fetch_one(settings, fake_site.url("/always-429"))
    assert result.status_code == 429 and result.statuses == (429,)  # the answer stands
    assert time.monotonic() - started < 0.9  # the server's 1 s was more than the cap


async def test_retry_after_http_date(fake_site: FakeSite, transport: str) -> None:
    started = time.monotonic()
    result = await fetch_one(make_settings(transport), fake_site.url("/retry-after-date"))
    assert result.status_code == 200 and result.statuses == (503, 200)
    assert time.monotonic() - started >= 0.9


# -- redirects -------------------------------------------------------------------------------
async def test_redirect_chain_records_every_hop(fake_site: FakeSite, transport: str) -> None:
    result = await fetch_one(make_settings(transport), fake_site.url("/redirect/3"))
    assert result.status_code == 200 and result.final_url == fake_site.url(ARTICLE)
    assert result.redirects == (
        Hop(fake_site.url("/redirect/3"), 308),
        Hop(fake_site.url("/redirect/2"), 307),
        Hop(fake_site.url("/redirect/1"), 302),
    )


async def test_redirect_loop(fake_site: FakeSite, transport: str) -> None:
    result = await fetch_one(make_settings(transport), fake_site.url("/loop/a"))
    assert result.failure is Failure.REDIRECT_LOOP
    assert [hop.url for hop in result.redirects] == [
        fake_site.url("/loop/a"),
        fake_site.url("/loop/b"),
    ]
    assert result.attempts == 1 and fake_site.hits["/loop/a"] == 1  # no GET retry of a loop


async def test_too_many_redirects(fake_site: FakeSite, transport: str) -> None:
    settings = make_settings(transport, max_redirects=2)
    too_many = await fetch_one(settings, fake_site.url("/redirect/3"))
    assert too_many.failure is Failure.TOO_MANY_REDIRECTS and len(too_many.redirects) == 3
    just_enough = await fetch_one(settings, fake_site.url("/redirect/2"))
    assert just_enough.failure is None and just_enough.status_code == 200


@pytest.mark.parametrize(
    "location", ["file:///etc/passwd", "javascript:alert(1)", "data:text/html,hi", "ftp://e.org/x"]
)
async def test_non_http_redirect_is_refused(location: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": location})

    settings = make_settings("httpx")
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        result = await Fetcher(settings, client=client).fetch("http://127.0.0.1/start")
    assert result.failure is Failure.BAD_REDIRECT
    assert result.redirects == (Hop("http://127.0.0.1/start", 302),)


# -- HEAD quirks and conditional requests ----------------------------------------------------
@pytest.mark.parametrize("path", ["/head-405", "/head-404"])
async def test_head_refused_falls_back_to_get(
    fake_site: FakeSite, transport: str, path: str
) -> None:
    result = await fetch_one(make_settings(transport), fake_site.url(path))
    assert (result.status_code, result.method, result.attempts) == (200, "GET", 1)
    assert [method for method, *_ in fake_site.requests] == ["HEAD", "GET"]


async def test_conditional_get(fake_site: FakeSite, transport: str) -> None:
    settings = make_settings(transport)
    url = fake_site.url("/etag.html")
    fresh = await fetch_one(settings, url, want_body=True)
    assert fresh.status_code == 200 and (fresh.etag, fresh.last_modified) == (ETAG, LAST_MODIFIED)
    by_etag = await fetch_one(settings, url, want_body=True, etag=ETAG)
    assert by_etag.status_code == 304 and by_etag.body is None and by_etag.failure is None
    by_date = await fetch_one(settings, url, want_body=True, last_modified=LAST_MODIFIED)
    assert by_date.status_code == 304
    changed = await fetch_one(settings, url, want_body=True, etag='"other"')
    assert changed.status_code == 200 and changed.body
    sent = [headers for _, path, headers in fake_site.requests if path == "/etag.html"]
    assert (
        sent[1].get("If-None-Match") == ETAG and sent[2].get("If-Modified-Since") == LAST_MODIFIED
    )


# -- size limits -----------------------------------------------------------------------------
async def test_big_body_is_truncated_at_cap(fake_site: FakeSite, transport: str) -> None:
    async with Fetcher(make_settings(transport)) as fetcher:
        result = await fetcher.fetch(fake_site.url("/big"), want_body=True)
    assert result.status_code == 200 and result.failure is None
    assert result.truncated and result.body is not None and len(result.body) == CAP
    assert result.body.startswith(b"<p>xxx")
    assert fetcher.stats.bytes_received < 2 * 1024 * 1024  # stopped reading, 20 MB were on offer


async def test_gzip_bomb_stops_at_cap(fake_site: FakeSite, transport: str) -> None:
    async with Fetcher(make_settings(transport)) as fetcher:
        tracemalloc.start()
        try:
            result = await fetcher.fetch(fake_site.url("/gzip-bomb"), want_body=True)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert result.truncated and result.body == bytes(CAP)
    assert fetcher.stats.bytes_received < 1024 * 1024  # compressed bytes read before the cap
    # 200 MB on offer; inflating whole network reads would peak at 50-150 MB here.
    assert peak < 8 * 1024 * 1024


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", lambda data: zlib.compress(data, wbits=16 + zlib.MAX_WBITS)),
        ("deflate", zlib.compress),
        ("identity", lambda data: data),
    ],
)
async def test_encoded_bodies_are_decoded(encoding: str, compress: Any) -> None:
    page = b"<html><title>ok</title>" + b"<p>text</p>" * 1000 + b"</html>"

    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Type": "text/html", "Content-Encoding": encoding}
        return httpx.Response(200, stream=Chunks(compress(page)), headers=headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        fetcher = Fetcher(make_settings("httpx"), client=client)
        whole = await fetcher.fetch("http://127.0.0.1/p", want_body=True)
        fetcher = Fetcher(make_settings("httpx", max_body_bytes=1024), client=client)
        cut = await fetcher.fetch("http://127.0.0.1/p", want_body=True)
    assert whole.body == page and not whole.truncated
    assert cut.body == page[:1024] and cut.truncated


async def test_corrupt_gzip_is_a_protocol_failure() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        headers = {"Content-Type": "text/html", "Content-Encoding": "gzip"}
        return httpx.Response(200, stream=Chunks(b"this is not gzip"), headers=headers)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        result = await Fetcher(make_settings("httpx"), client=client).fetch(
            "http://127.0.0.1/p", want_body=True
        )
    assert result.status_code == 200 and result.failure is Failure.PROTOCOL


async def test_body_only_for_text(transport: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"\x89PNG....", headers={"Content-Type": "image/png"})

    settings = make_settings(transport)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        result = await Fetcher(settings, client=client).fetch(
            "http://127.0.0.1/a.png", want_body=True
        )
    assert result.status_code == 200 and result.body is None


# -- deadlines and transport failures ---------------------------------------------------------
@pytest.mark.parametrize("path", ["/hang", "/slow?delay=20"])
async def test_url_deadline(fake_site: FakeSite, transport: str, path: str) -> None:
    settings = make_settings(transport, url_timeout=1.0, read_timeout=30.0)
    started = time.monotonic()
    result = await fetch_one(settings, fake_site.url(path))
    assert 0.9 <= time.monotonic() - started < 10
    assert result.failure is Failure.TIMEOUT and result.detail is not None
    assert "deadline" in result.detail
    assert result.attempts == 1 and result.statuses == (None,)


async def test_read_timeout_is_retried(fake_site: FakeSite, transport: str) -> None:
    settings = make_settings(transport, read_timeout=0.3, retries=1)
    result = await fetch_one(settings, fake_site.url("/hang"))
    assert result.failure is Failure.TIMEOUT and result.detail is not None
    assert "deadline" not in result.detail
    assert result.attempts == 2 and result.statuses == (None, None)


async def test_slow_within_deadline(fake_site: FakeSite, transport: str) -> None:
    result = await fetch_one(make_settings(transport), fake_site.url("/slow?delay=0.2"))
    assert result.status_code == 200


async def test_reset_is_mapped_and_retried(fake_site: FakeSite, transport: str) -> None:
    result = await fetch_one(make_settings(transport, retries=1), fake_site.url("/reset"))
    assert result.failure is Failure.RESET, result.detail
    assert result.attempts == 2 and result.statuses == (None, None)


async def test_refused_is_not_retried(transport: str) -> None:
    url = f"http://127.0.0.1:{closed_port()}/x"
    result = await fetch_one(make_settings(transport), url)
    assert result.failure is Failure.REFUSED, result.detail
    assert result.attempts == 1 and not result.answered


@pytest.mark.parametrize("private_ok", [True, False])
async def test_unknown_host_is_dns(transport: str, private_ok: bool) -> None:
    settings = make_settings(transport, allow_private_networks=private_ok)
    result = await fetch_one(settings, "http://nonexistent.invalid/page")
    assert result.failure is Failure.DNS, result.detail
    assert result.attempts == (1 if private_ok else 0)  # the address check resolves first


async def test_private_address_blocked(fake_site: FakeSite, transport: str) -> None:
    settings = make_settings(transport, allow_private_networks=False)
    async with Fetcher(settings) as fetcher:
        result = await fetcher.fetch(fake_site.url(ARTICLE))
    assert result.failure is Failure.PRIVATE_ADDRESS and result.detail is not None
    assert "127.0.0.1" in result.detail
    assert fetcher.stats.requests == 0 and sum(fake_site.hits.values()) == 0


async def test_redirect_to_private_address_blocked() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"Location": "http://127.0.0.1/admin"})

    settings = make_settings("httpx", allow_private_networks=False)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        result = await Fetcher(settings, client=client).fetch("http://93.184.216.34/story")
    assert result.failure is Failure.PRIVATE_ADDRESS
    assert result.redirects == (Hop("http://93.184.216.34/story", 301),)


@pytest.mark.parametrize(
    ("url", "failure"),
    [
        ("ftp://example.org/file", Failure.UNSUPPORTED_SCHEME),
        ("mailto:someone@example.org", Failure.UNSUPPORTED_SCHEME),
        ("javascript:void(0)", Failure.UNSUPPORTED_SCHEME),
        ("http://", Failure.INVALID_URL),
        ("/relative/path", Failure.INVALID_URL),
    ],
)
async def test_unsupported_urls_send_nothing(transport: str, url: str, failure: Failure) -> None:
    async with Fetcher(make_settings(transport)) as fetcher:
        result = await fetcher.fetch(url)
    assert result.failure is failure and result.attempts == 0
    assert fetcher.stats.requests == 0


# -- limits and headers ----------------------------------------------------------------------
@pytest.mark.parametrize(("concurrency", "per_host", "peak"), [(64, 2, 2), (1, 8, 1), (64, 4, 4)])
async def test_concurrency_limits(
    fake_site: FakeSite, transport: str, concurrency: int, per_host: int, peak: int
) -> None:
    settings = make_settings(transport, concurrency=concurrency, per_host_concurrency=per_host)
    async with Fetcher(settings) as fetcher:
        urls = [fake_site.url(f"/slow?delay=0.2&n={n}") for n in range(8)]
        results = await asyncio.gather(*(fetcher.fetch(url) for url in urls))
    assert all(result.status_code == 200 for result in results)
    assert fake_site.peak_in_flight == peak  # reached, never passed


async def test_user_agent_is_sent(fake_site: FakeSite, transport: str) -> None:
    async with Fetcher(make_settings(transport)) as fetcher:
        await fetcher.fetch(fake_site.url(ARTICLE), want_body=True)
        await fetcher.fetch(fake_site.url("/dead"))
    agents = {headers.get("User-Agent") for *_, headers in fake_site.requests}
    assert agents == {"fake-site-test/1.0"}


async def test_owned_client_sends_straight_to_its_transport_with_the_same_headers(
    fake_site: FakeSite, transport: str
) -> None:
    """The Fetcher's own client skips AsyncClient.send (Sender); a client passed in keeps it.
    Both send the same request headers, conditional ones included."""
    settings = make_settings(transport)
    url = fake_site.url("/etag.html")
    async with Fetcher(settings) as fetcher:
        assert fetcher.sender.transport is not None
        await fetcher.fetch(url, want_body=True, etag=ETAG)
    direct = fake_site.requests[-1][2]
    async with Fetcher(settings) as owner:  # the same client settings, sent the long way
        client = owner.client
        passed = Fetcher(settings, client=client)
        assert passed.sender.transport is None
        await passed.fetch(url, want_body=True, etag=ETAG)
    through_send = fake_site.requests[-1][2]
    assert direct == through_send
    assert direct["If-None-Match"] == ETAG and direct["User-Agent"] == "fake-site-test/1.0"
    assert "gzip" in direct["Accept-Encoding"] and "text/html" in direct["Accept"]


async def test_fetcher_needs_context() -> None:
    with pytest.raises(RuntimeError):
        await Fetcher(make_settings("httpx")).fetch("http://127.0.0.1/")


# -- pure helpers ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("result", "expected"),
    [
        (FetchResult("u", status_code=200), False),
        (FetchResult("u", status_code=404), False),
        (FetchResult("u", status_code=403), False),
        (FetchResult("u", status_code=408), True),
        (FetchResult("u", status_code=429), True),
        (FetchResult("u", status_code=500), True),
        (FetchResult("u", status_code=501), False),
        (FetchResult("u", status_code=502), True),
        (FetchResult("u", status_code=503), True),
        (FetchResult("u", status_code=504), True),
        (FetchResult("u", failure=Failure.TIMEOUT), True),
        (FetchResult("u", failure=Failure.RESET), True),
        (FetchResult("u", failure=Failure.DNS), False),
        (FetchResult("u", failure=Failure.REFUSED), False),
        (FetchResult("u", failure=Failure.TLS), False),
        (FetchResult("u", failure=Failure.REDIRECT_LOOP), False),
        (FetchResult("u", status_code=302, failure=Failure.TOO_MANY_REDIRECTS), False),
    ],
)
def test_should_retry(result: FetchResult, expected: bool) -> None:
    assert should_retry(result) is expected


NOW = datetime(2025, 1, 6, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 0 ", 0.0),
        ("-5", None),
        ("soon", None),
        ("Mon, 06 Jan 2025 10:00:30 GMT", 30.0),
        ("Monday, 06-Jan-25 10:01:00 GMT", 60.0),  # RFC 850, obsolete but allowed
        ("Mon Jan  6 10:00:05 2025", 5.0),  # asctime
        ("Mon, 06 Jan 2025 09:00:00 GMT", 0.0),  # in the past: no wait
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_naive_now_is_utc() -> None:
    naive = NOW.replace(tzinfo=None) - timedelta(seconds=10)
    assert parse_retry_after("Mon, 06 Jan 2025 10:00:00 GMT", naive) == 10.0


def _chained(outer: Exception, cause: BaseException) -> Exception:
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(
    ("exc", "failure"),
    [
        (socket.gaierror(-2, "Name or service not known"), Failure.DNS),
        (_chained(httpx.ConnectError("x"), socket.gaierror(-3, "x")), Failure.DNS),
        (httpx.ConnectError("[Errno -2] Name or service not known"), Failure.DNS),
        (ConnectionRefusedError(111, "Connection refused"), Failure.REFUSED),
        (_chained(httpx.ConnectError("x"), ConnectionRefusedError(111, "x")), Failure.REFUSED),
        (httpx.ConnectError("network unreachable"), Failure.CONNECT),
        (httpx.ReadTimeout("x"), Failure.TIMEOUT),
        (TimeoutError(), Failure.TIMEOUT),
        (
            httpx.RemoteProtocolError("Server disconnected without sending a response."),
            Failure.RESET,
        ),
        (httpx.RemoteProtocolError("illegal status line: b'HTTP/9'"), Failure.PROTOCOL),
        (_chained(httpx.ConnectTimeout("x"), aiohttp.ServerDisconnectedError()), Failure.RESET),
        (ConnectionResetError(104, "Connection reset by peer"), Failure.RESET),
        (ssl.SSLCertVerificationError("certificate verify failed"), Failure.TLS),
        (_chained(httpx.ConnectError("x"), ssl.SSLError(1, "bad handshake")), Failure.TLS),
        (httpx.UnsupportedProtocol("x"), Failure.UNSUPPORTED_SCHEME),
        (httpx.InvalidURL("x"), Failure.INVALID_URL),
        (ValueError("something else"), Failure.PROTOCOL),
    ],
)
def test_map_exception(exc: Exception, failure: Failure) -> None:
    mapped, detail = map_exception(exc)
    assert mapped is failure
    assert detail


async def test_time_queued_behind_a_busy_host_is_not_the_servers_fault(
    fake_site: FakeSite, transport: str
) -> None:
    """The per-URL deadline starts when the URL's request goes out, not while it waits its turn."""
    settings = make_settings(transport, per_host_concurrency=1, url_timeout=1.5, retries=0)
    urls = [fake_site.url(f"/slow?delay=0.6&n={i}") for i in range(4)]
    async with Fetcher(settings) as fetcher:
        results = await asyncio.gather(*(fetcher.fetch(u) for u in urls))
    # One at a time: the last waited ~1.8 s for its slot, longer than the 1.5 s deadline.
    assert [r.status_code for r in results] == [200, 200, 200, 200]
    assert fake_site.peak_in_flight == 1


async def test_gate_is_asked_before_every_request(fake_site: FakeSite, transport: str) -> None:
    asked: list[str] = []

    class Gate:
        async def acquire(self, host: str) -> None:
            asked.append(host)

    settings = make_settings(transport)
    async with Fetcher(settings, gate=Gate()) as fetcher:
        result = await fetcher.fetch(fake_site.url("/redirect/2"))
    assert result.status_code == 200
    host = fake_site.base_url.removeprefix("http://")
    assert asked == [host] * 3  # two redirect hops and the page


async def test_an_unwanted_error_page_is_read_so_its_connection_is_kept(
    transport: str, fake_site: FakeSite
) -> None:
    """A 404 page still arriving when the answer is known is read to its end (it is small),
    so the next request to the host goes on the same connection instead of a new one."""
    settings = make_settings(transport, concurrency=1, per_host_concurrency=1, head_first=False)
    async with Fetcher(settings) as fetcher:
        first = await fetcher.fetch(fake_site.url("/slow-error-page"))
        second = await fetcher.fetch(fake_site.url("/news/target.html"))
    assert (first.status_code, second.status_code) == (404, 200)
    assert [method for method, _, _ in fake_site.requests] == ["GET", "GET"]
    assert len(fake_site.client_ports) == 2
    assert fake_site.client_ports[0] == fake_site.client_ports[1]


async def test_a_cookie_set_on_a_redirect_is_sent_on_the_next_hop(
    transport: str, fake_site: FakeSite
) -> None:
    """A cookie wall: the story redirects to a consent URL that sets a cookie and sends the
    reader back; only with the cookie does the story answer 200 (no redirect loop)."""
    result = await fetch_one(make_settings(transport), fake_site.url("/cookie-wall/story"))
    assert result.status_code == 200, result.failure
    assert [hop.status_code for hop in result.redirects] == [302, 302]
    assert result.final_url == fake_site.url("/cookie-wall/story")
