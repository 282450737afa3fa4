"""Retries against a real server on 127.0.0.1 that asks for long waits: the answer stands.

A Retry-After above `retry_after_cap` or beyond the URL's time budget is not waited for; a
retry is only made with enough budget left after its wait, so our own waiting never turns the
server's real answer into a timeout.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Iterator
from typing import Any

import pytest
from aiohttp import web

from crawler.classify import classify_result
from crawler.config import FetchSettings
from crawler.fetch import Fetcher
from crawler.fetch.policy import is_retry_affordable
from crawler.model import FetchResult, Verdict
from tests.servers import ThreadedServer
from tests.test_fetch import make_settings

pytestmark = pytest.mark.timeout(30)


class WaitingServer(ThreadedServer):
    """`/429` and `/503` always, with `Retry-After: <ra>` when the query has `ra`; counts hits."""

    lifetime = 60.0

    def __init__(self) -> None:
        super().__init__()
        self.hits: collections.Counter[str] = collections.Counter()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        self.hits[request.path] += 1
        status = int(request.path.strip("/"))
        ra = request.query.get("ra")
        headers = {"Retry-After": ra} if ra is not None else {}
        return web.Response(status=status, text="wait\n", headers=headers)


@pytest.fixture
def server() -> Iterator[WaitingServer]:
    with WaitingServer() as started:
        yield started


def settings_for(transport: str, **overrides: Any) -> FetchSettings:
    """test_fetch's loopback settings with a short per-URL budget, so a wasted budget shows in
    seconds, and a cap above every Retry-After the budget allows."""
    values: dict[str, Any] = {"retries": 3, "url_timeout": 2.0, "retry_after_cap": 60.0}
    return make_settings(transport, **{**values, **overrides})


async def timed_fetch(settings: FetchSettings, url: str) -> tuple[FetchResult, float]:
    """Fetch `url` with a fresh Fetcher; the result and the seconds it took."""
    started = time.monotonic()
    async with Fetcher(settings) as fetcher:
        result = await fetcher.fetch(url)
    return result, time.monotonic() - started


@pytest.mark.parametrize(
    ("path", "verdict", "reason"),
    [
        (
            "/429?ra=120",
            Verdict.BLOCKED,
            "429 Too Many Requests: rate-limited (Retry-After: 120 s)",
        ),
        (
            "/503?ra=3600",
            Verdict.ERROR,
            "503 Service Unavailable: server error (Retry-After: 3600 s)",
        ),
    ],
)
async def test_retry_after_above_the_cap_is_reported_at_once(
    server: WaitingServer, transport: str, path: str, verdict: Verdict, reason: str
) -> None:
    settings = settings_for(transport, url_timeout=3.0, retry_after_cap=1.0)
    result, seconds = await timed_fetch(settings, server.url(path))
    assert result.failure is None and result.statuses == (int(path[1:4]),)
    assert result.attempts == 1 and server.hits[path[:4]] == 1  # not retried
    assert seconds < 1.0  # well before the 3 s budget
    assert classify_result(result) == (verdict, reason)


async def test_retry_after_beyond_the_budget_is_reported_at_once(
    server: WaitingServer, transport: str
) -> None:
    # Within the cap (60 s), but more than the URL's 2 s budget.
    result, seconds = await timed_fetch(settings_for(transport), server.url("/429?ra=5"))
    assert result.status_code == 429 and result.failure is None
    assert result.attempts == 1 and server.hits["/429"] == 1
    assert seconds < 1.0
    assert classify_result(result)[0] is Verdict.BLOCKED


async def test_a_retry_is_not_made_without_budget_left_after_its_wait(
    server: WaitingServer, transport: str
) -> None:
    # Retry-After: 1 in a 2 s budget: one retry after 1 s; a second wait would use up the rest.
    result, seconds = await timed_fetch(settings_for(transport), server.url("/429?ra=1"))
    assert result.status_code == 429 and result.failure is None  # not a timeout of our making
    assert result.statuses == (429, 429) and server.hits["/429"] == 2
    assert 0.9 <= seconds < 2.0
    verdict, reason = classify_result(result)
    assert verdict is Verdict.BLOCKED and reason is not None and "after 2 attempts" in reason


async def test_backoff_never_spends_the_last_of_the_budget(
    server: WaitingServer, transport: str
) -> None:
    # No Retry-After: the backoff (0.3-0.6 s, then 0.6-0.9 s) would outlast the 1 s budget.
    settings = settings_for(transport, url_timeout=1.0, backoff_base=0.3, backoff_max=1.0)
    result, seconds = await timed_fetch(settings, server.url("/503"))
    assert result.status_code == 503 and result.failure is None
    assert result.statuses == (503, 503) and server.hits["/503"] == 2
    assert seconds < 1.0


@pytest.mark.parametrize(
    ("wait", "remaining", "retry_after", "expected"),
    [
        (1.0, 10.0, 1.0, True),  # within the cap and the budget
        (0.0, 10.0, 0.0, True),
        (30.0, 100.0, 30.0, True),  # exactly the cap
        (31.0, 100.0, 31.0, False),  # above the cap, however much budget is left
        (5.0, 10.0, 5.0, True),  # leaves 5 s, more than a quarter of 10 s
        (8.0, 10.0, 8.0, False),  # leaves 2 s: too little for a useful attempt
        (8.0, 10.0, None, False),  # the same for backoff
        (0.5, 0.0, None, False),  # the budget is spent
        (0.5, float("inf"), None, True),  # no request went yet: the whole budget is left
    ],
)
def test_is_retry_affordable(
    wait: float, remaining: float, retry_after: float | None, expected: bool
) -> None:
    got = is_retry_affordable(wait, remaining, retry_after, cap=30.0, url_timeout=10.0)
    assert got is expected
