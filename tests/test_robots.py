"""robots.txt: the pure parser, the per-crawl cache, and Fetcher.allowed_by_robots over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from crawler.config import FetchSettings
from crawler.fetch import Fetcher
from crawler.model import Failure, FetchResult
from crawler.robots import RobotsCache, parse_robots, robots_url, rules_from_result
from tests.fakesite import FakeSite, fake_site_fixture  # noqa: F401

pytestmark = pytest.mark.timeout(60)

ROBOTS = """\
User-agent: fussybot
Disallow: /

User-agent: *
Disallow: /private/
Allow: /private/open.html
Crawl-delay: 2.5
"""


def settings(transport: str, **overrides: Any) -> FetchSettings:
    """Loopback settings with quick retries."""
    values: dict[str, Any] = {
        "transport": transport,
        "allow_private_networks": True,
        "retries": 1,
        "backoff_base": 0.0,
        "backoff_max": 0.01,
        "url_timeout": 5.0,
        "user_agent": "fake-site-test/1.0",
    }
    values.update(overrides)
    return FetchSettings(**values)


class Server:
    """An in-memory robots.txt server standing in for Fetcher.fetch, counting its calls."""

    def __init__(self, result: FetchResult, delay: float = 0.0) -> None:
        self.result = result
        self.delay = delay
        self.calls: list[str] = []

    async def get(self, url: str) -> FetchResult:
        self.calls.append(url)
        await asyncio.sleep(self.delay)
        return self.result


def robots_result(body: str, status: int = 200) -> FetchResult:
    return FetchResult("http://h/robots.txt", status_code=status, body=body.encode())


# -- pure parts ------------------------------------------------------------------------------
def test_parse_robots_rules() -> None:
    rules = parse_robots(ROBOTS)
    assert rules.can_fetch("http://h/news/a.html", "crawler/0.1 (link checker)")
    assert not rules.can_fetch("http://h/private/x.html", "crawler/0.1 (link checker)")
    assert rules.can_fetch("http://h/private/open.html", "crawler/0.1 (link checker)")
    assert not rules.can_fetch("http://h/news/a.html", "FussyBot/2.0")
    assert rules.crawl_delay("crawler/0.1") == 2.5


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.org/a/b?c#d", "http://example.org/robots.txt"),
        ("HTTPS://Example.org:8443/x", "https://Example.org:8443/robots.txt"),
        ("http://user:pw@example.org/x", "http://example.org/robots.txt"),
        ("mailto:a@example.org", None),
        ("/relative", None),
    ],
)
def test_robots_url(url: str, expected: str | None) -> None:
    assert robots_url(url) == expected


@pytest.mark.parametrize(
    "result",
    [
        FetchResult("u", status_code=404, body=b"User-agent: *\nDisallow: /"),
        FetchResult("u", status_code=500),
        FetchResult("u", status_code=403),
        FetchResult("u", failure=Failure.TIMEOUT),
        FetchResult("u", status_code=200, body=None),  # not a text type: body not kept
    ],
)
def test_unusable_robots_means_allow_all(result: FetchResult) -> None:
    assert rules_from_result(result) is None


def test_robots_parse_is_limited_to_500_kib() -> None:
    filler = "# " + "x" * 600 * 1024 + "\n"
    rules = parse_robots(filler + "User-agent: *\nDisallow: /\n")
    assert rules.can_fetch("http://h/anything", "crawler")  # the rule lies beyond the limit


# -- the cache -------------------------------------------------------------------------------
async def test_cache_fetches_once_per_host_even_when_concurrent() -> None:
    server = Server(robots_result(ROBOTS), delay=0.05)
    cache = RobotsCache("crawler/0.1")
    urls = [f"http://h/private/{n}.html" for n in range(10)] + ["http://h/news/x.html"]
    verdicts = await asyncio.gather(*(cache.allowed(url, server.get) for url in urls))
    assert verdicts == [False] * 10 + [True]
    assert server.calls == ["http://h/robots.txt"]
    assert cache.crawl_delay("http://h/any") == 2.5


async def test_cache_is_per_scheme_host_and_port() -> None:
    server = Server(robots_result(ROBOTS))
    cache = RobotsCache()
    for url in ("http://h/a", "https://h/a", "http://h:8080/a", "http://other/a", "http://h/b"):
        await cache.allowed(url, server.get)
    assert server.calls == [
        "http://h/robots.txt",
        "https://h/robots.txt",
        "http://h:8080/robots.txt",
        "http://other/robots.txt",
    ]


async def test_cache_respects_user_agent() -> None:
    server = Server(robots_result(ROBOTS))
    assert not await RobotsCache("FussyBot/2.0").allowed("http://h/news", server.get)
    assert await RobotsCache("crawler/0.1").allowed("http://h/news", server.get)


async def test_missing_robots_allows_everything() -> None:
    cache = RobotsCache()
    server = Server(robots_result("User-agent: *\nDisallow: /", status=404))
    assert await cache.allowed("http://h/private/x", server.get)
    assert cache.crawl_delay("http://h/x") is None


async def test_non_http_urls_need_no_robots() -> None:
    server = Server(robots_result(ROBOTS))
    assert await RobotsCache().allowed("mailto:a@b.org", server.get)
    assert server.calls == []


# -- through the Fetcher, against the fake site ----------------------------------------------
@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
async def test_fetcher_robots_on_fake_site(fake_site: FakeSite, transport: str) -> None:
    async with Fetcher(settings(transport)) as fetcher:
        assert await fetcher.allowed_by_robots(fake_site.url("/news/article-1.html"))
        assert not await fetcher.allowed_by_robots(fake_site.url("/private/story.html"))
        assert await fetcher.allowed_by_robots(fake_site.url("/dead"))
        assert fetcher.crawl_delay(fake_site.url("/")) == 0.0
    assert fake_site.hits["/robots.txt"] == 1
    agents = {headers.get("User-Agent") for *_, headers in fake_site.requests}
    assert agents == {"fake-site-test/1.0"}


@pytest.mark.parametrize(("status", "requests"), [(404, 1), (410, 1), (500, 2), (503, 2)])
async def test_failing_robots_means_allowed(
    fake_site: FakeSite, status: int, requests: int
) -> None:
    fake_site.set_status("/robots.txt", status)
    async with Fetcher(settings("httpx")) as fetcher:
        assert await fetcher.allowed_by_robots(fake_site.url("/private/story.html"))
        assert await fetcher.allowed_by_robots(fake_site.url("/private/other.html"))
    assert fake_site.hits["/robots.txt"] == requests  # 5xx retried once, then cached


async def test_robots_timeout_means_allowed() -> None:
    asked: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        asked.append(request.url.path)
        raise httpx.ReadTimeout("no answer", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        fetcher = Fetcher(settings("httpx"), client=client)
        assert await fetcher.allowed_by_robots("http://127.0.0.1/private/x.html")
        assert await fetcher.allowed_by_robots("http://127.0.0.1/private/y.html")
    assert asked == ["/robots.txt", "/robots.txt"]  # one retry, then cached as "allow all"


async def test_robots_obey_private_address_rule(fake_site: FakeSite) -> None:
    async with Fetcher(settings("httpx", allow_private_networks=False)) as fetcher:
        assert await fetcher.allowed_by_robots(fake_site.url("/private/story.html"))
    assert fake_site.hits["/robots.txt"] == 0  # blocked like any other request
