"""Per-host slots that a host's 429s narrow: the rule on its own, then a Fetcher against the
fake site over real HTTP."""

from __future__ import annotations

import asyncio

import pytest

from crawler.fetch import Fetcher
from crawler.fetch.slots import HostSlots
from tests.fakesite import FakeSite, fake_site_fixture  # noqa: F401
from tests.test_fetch import make_settings

pytestmark = pytest.mark.timeout(60)


async def peak_holders(slots: HostSlots, tasks: int, hold: float = 0.01) -> int:
    """How many of `tasks` held a slot at once."""
    holding = peak = 0

    async def one() -> None:
        nonlocal holding, peak
        await slots.acquire()
        try:
            holding += 1
            peak = max(peak, holding)
            await asyncio.sleep(hold)
        finally:
            holding -= 1
            slots.release()

    await asyncio.gather(*(one() for _ in range(tasks)))
    return peak


async def test_a_429_halves_the_limit_down_to_one() -> None:
    slots = HostSlots(8)
    assert await peak_holders(slots, 20) == 8
    for expected in (4, 2, 1, 1):
        await slots.answered(429)
        assert slots.limit == expected
    assert await peak_holders(slots, 20) == 1


async def test_slots_out_when_the_limit_drops_are_kept_back_as_they_return() -> None:
    slots = HostSlots(4)
    for _ in range(4):
        await slots.acquire()
    await slots.answered(429)  # all four out: two are taken back as they come home
    for _ in range(4):
        slots.release()
    assert slots.limit == 2
    await asyncio.wait_for(slots.acquire(), 1)
    await asyncio.wait_for(slots.acquire(), 1)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(slots.acquire(), 0.05)


async def test_calm_answers_raise_the_limit_one_at_a_time_to_the_ceiling() -> None:
    slots = HostSlots(4)
    await slots.answered(429)
    await slots.answered(429)
    assert slots.limit == 1
    limits = []
    for _ in range(12):
        await slots.answered(200)
        limits.append(slots.limit)
    # one calm answer per slot of the current limit raises it by one: 1, then 2, 3, 4
    assert limits == [2, 2, 3, 3, 3, 4, 4, 4, 4, 4, 4, 4]
    assert await peak_holders(slots, 12) == 4


async def test_a_host_answering_429_gets_fewer_requests_at_once(fake_site: FakeSite) -> None:
    """After a 429 from the host (not retried here), the host's other URLs go out two at a
    time, not four; another host of the same crawl keeps its four."""
    settings = make_settings("aiohttp", per_host_concurrency=4, retries=0)
    async with Fetcher(settings) as fetcher:
        limited = await fetcher.fetch(fake_site.url("/always-429"))
        assert limited.status_code == 429
        fake_site.reset()
        urls = [fake_site.url(f"/slow?delay=0.3&n={n}") for n in range(4)]
        results = await asyncio.gather(*(fetcher.fetch(url) for url in urls))
        assert [r.status_code for r in results] == [200] * 4
        assert fake_site.peak_in_flight == 2
        other = fake_site.base_url.replace("127.0.0.1", "localhost")
        fake_site.reset()
        urls = [f"{other}/slow?delay=0.3&n={n}" for n in range(4)]
        await asyncio.gather(*(fetcher.fetch(url) for url in urls))
        assert fake_site.peak_in_flight == 4
