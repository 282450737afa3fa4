"""robots.txt: a pure parser (protego) and a per-crawl cache that fetches each host's file once.

The cache does no I/O of its own: it is handed a `fetcher_get(url) -> FetchResult` (in
practice `Fetcher.fetch`), so robots.txt goes through the same client, limits and retries as
every other request.

Unavailable robots.txt means "allowed": a 4xx (RFC 9309 §2.3.1.3), and, by this project's
choice, also a 5xx after retries or a transport failure. RFC 9309 §2.3.1.4 asks crawlers to
assume a complete disallow for an unreachable file; a link checker that then reported every
link of a flaky host as blocked would be less useful than one that checks them.

`Crawl-delay` (not in RFC 9309; protego reads it) is applied by `HostPacer`: requests to a host
start at least that many seconds apart, capped by `MAX_CRAWL_DELAY` so one robots.txt asking
for an hour cannot stall a crawl.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from protego import Protego

from crawler.model import FetchResult
from crawler.urls import host_key

# RFC 9309 §2.5: crawlers must parse at least 500 KiB; we parse exactly that much.
MAX_ROBOTS_BYTES = 500 * 1024
# The longest Crawl-delay honoured, in seconds (a constant until Settings has a field for it).
MAX_CRAWL_DELAY = 10.0

FetcherGet = Callable[[str], Awaitable[FetchResult]]


def parse_robots(robots_txt: str) -> Protego:
    """Parse robots.txt text (the first 500 KiB) into protego rules."""
    return Protego.parse(robots_txt[:MAX_ROBOTS_BYTES])


def robots_url(url: str) -> str | None:
    """The robots.txt URL governing `url`, or None when `url` has no http(s) host."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:  # an unbalanced IPv6 bracket: no host to ask
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2]}/robots.txt"


def rules_from_result(result: FetchResult) -> Protego | None:
    """The rules a robots.txt fetch gave, or None ("allow all") if it was not a usable 2xx."""
    if result.failure is not None or result.status_code is None:
        return None
    if not 200 <= result.status_code < 300 or result.body is None:
        return None
    return parse_robots(result.body[:MAX_ROBOTS_BYTES].decode("utf-8", errors="replace"))


class RobotsCache:
    """robots.txt rules per scheme and host, fetched once per crawl and shared."""

    def __init__(self, user_agent: str = "*") -> None:
        self.user_agent = user_agent
        self._rules: dict[str, Protego | None] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def allowed(self, url: str, fetcher_get: FetcherGet) -> bool:
        """True if robots.txt lets our user agent fetch `url` (robots.txt fetched once per host)."""
        key = self._key(url)
        if key is None:
            return True
        rules = await self._rules_for(key, fetcher_get)
        return rules is None or bool(rules.can_fetch(url, self.user_agent))

    def crawl_delay(self, url: str) -> float | None:
        """The Crawl-delay for `url`'s host, if its robots.txt was fetched and sets one."""
        if not self._rules:  # nothing fetched yet (a flat crawl never asks): no URL to parse
            return None
        key = self._key(url)
        rules = self._rules.get(key) if key is not None else None
        if rules is None:
            return None
        delay = rules.crawl_delay(self.user_agent)
        return None if delay is None else float(delay)

    def _key(self, url: str) -> str | None:
        """Cache key: robots.txt URL, i.e. scheme + host + port."""
        target = robots_url(url)
        return None if target is None or not host_key(target) else target

    async def _rules_for(self, key: str, fetcher_get: FetcherGet) -> Protego | None:
        """Cached rules for one robots.txt URL; the first caller fetches, the rest wait."""
        if key in self._rules:
            return self._rules[key]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if key not in self._rules:
                self._rules[key] = rules_from_result(await fetcher_get(key))
        return self._rules[key]


class HostPacer:
    """Start times per host, spaced by a Crawl-delay; the clock is passed in for tests."""

    def __init__(
        self, cap: float | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.cap = cap
        self.clock = clock
        self._last: dict[str, float] = {}

    def reserve(self, url: str, delay: float | None) -> float:
        """Seconds to wait before a request to `url`'s host may start; that start is booked."""
        if not delay or delay <= 0 or not math.isfinite(delay):
            return 0.0
        delay = min(delay, MAX_CRAWL_DELAY if self.cap is None else self.cap)
        key, now = host_key(url), self.clock()
        start = max(now, self._last.get(key, -math.inf) + delay)
        self._last[key] = start
        return start - now

    def record(self, url: str) -> None:
        """Note a request to `url`'s host that started now (robots.txt itself)."""
        key = host_key(url)
        self._last[key] = max(self._last.get(key, -math.inf), self.clock())
