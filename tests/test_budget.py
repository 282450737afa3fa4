"""The per-host request budget: the pure GCRA rule, the in-process gate, the PostgreSQL gate."""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from crawler.budget import (
    LocalHostGate,
    interval_of,
    open_postgres_gate,
    reserve_slot,
)

pytestmark = pytest.mark.timeout(60)


def libpq(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def max_in_window(times: list[float], window: float) -> int:
    """The most events found in any window of `window` seconds."""
    ordered = sorted(times)
    best, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


# -- the pure rule -------------------------------------------------------------------------------
def test_burst_one_spaces_requests_one_interval_apart() -> None:
    tat, goes = None, []
    for _ in range(4):
        wait, tat = reserve_slot(tat, 100.0, 0.5, 1)
        goes.append(100.0 + wait)
    assert goes == [100.0, 100.5, 101.0, 101.5]


def test_a_quiet_host_allows_a_burst_then_spaces() -> None:
    tat, waits = 50.0, []  # last used long ago
    for _ in range(5):
        wait, tat = reserve_slot(tat, 100.0, 1.0, 3)
        waits.append(wait)
    assert waits == [0.0, 0.0, 0.0, 1.0, 2.0]


def test_a_rate_must_be_positive() -> None:
    assert interval_of(4.0) == 0.25
    with pytest.raises(ValueError, match="positive"):
        interval_of(0)


@given(
    gaps=st.lists(st.floats(min_value=0, max_value=2, allow_nan=False), min_size=1, max_size=60),
    rate=st.floats(min_value=0.5, max_value=50),
    burst=st.integers(min_value=1, max_value=5),
)
def test_no_window_gets_more_than_burst_plus_rate(
    gaps: list[float], rate: float, burst: int
) -> None:
    interval, tat, now, goes = 1 / rate, None, 0.0, []
    for gap in gaps:
        now += gap
        wait, tat = reserve_slot(tat, now, interval, burst)
        assert wait >= 0
        goes.append(now + wait)
    for window in (interval, 1.0, 5.0):
        # GCRA: at most burst + floor(window / interval) sends in any window (float slack).
        assert max_in_window(goes, window * (1 - 1e-9)) <= burst + int(window / interval + 1e-9)


# -- the in-process gate -------------------------------------------------------------------------
async def test_local_gate_paces_one_host_and_leaves_others_alone() -> None:
    gate = LocalHostGate(rate=40.0)
    started = time.monotonic()
    await asyncio.gather(*(gate.acquire("a:80") for _ in range(9)))
    paced = time.monotonic() - started
    started = time.monotonic()
    await asyncio.gather(*(gate.acquire(f"h{i}:80") for i in range(9)))
    assert paced >= 8 / 40 * 0.95
    assert time.monotonic() - started < 0.05


# -- the shared gate -----------------------------------------------------------------------------
@pytest.mark.postgres
async def test_postgres_gate_paces_a_host_across_gates(pg_url: str) -> None:
    from crawler.store import Store

    Store.open(pg_url).close()  # the migration creates host_budget
    rate = 25.0
    gates = [await open_postgres_gate(libpq(pg_url), rate) for _ in range(3)]
    sent: list[float] = []

    async def send(gate_index: int) -> None:
        await gates[gate_index].acquire("news.example:443")
        sent.append(time.monotonic())

    try:
        started = time.monotonic()
        await asyncio.gather(*(send(i % 3) for i in range(24)))
        other = time.monotonic()
        await gates[0].acquire("other.example:443")
        assert time.monotonic() - other < 0.5  # another host does not wait behind this one
    finally:
        for gate in gates:
            await gate.pool.close()
    # 24 sends at 25/s take at least 23 intervals, and no second holds more than rate + burst.
    assert max(sent) - started >= 23 / rate * 0.95
    assert max_in_window(sent, 1.0) <= rate + 2


@pytest.mark.postgres
async def test_postgres_gate_waits_grow_by_one_interval(pg_url: str) -> None:
    from crawler.store import Store

    Store.open(pg_url).close()
    gate = await open_postgres_gate(libpq(pg_url), rate=2.0)
    try:
        waits = [await gate.reserve("slow.example:80") for _ in range(4)]
    finally:
        await gate.pool.close()
    assert waits[0] == 0.0
    for before, after in itertools.pairwise(waits):
        assert after - before == pytest.approx(0.5, abs=0.05)
