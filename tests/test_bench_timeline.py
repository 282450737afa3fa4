"""bench.timeline's reading of one run's arrivals (the bench itself runs in `make bench`)."""

from __future__ import annotations

import pytest

from bench.timeline import describe, render


def test_a_retry_a_second_after_the_burst_ends_the_window_not_the_burst() -> None:
    # 200 first requests over 1 s, then 10 retries 1 s after the last 10 of them.
    first = [i / 200 for i in range(200)]
    retries = [1.0 + t for t in first[-10:]]
    timeline = describe(sorted(first + retries), first)
    assert timeline.requests == 210
    assert timeline.burst == pytest.approx(first[197])  # 99% in: index int(0.99 * 199)
    assert timeline.p99 == pytest.approx(retries[6])  # index int(0.99 * 209) = 206
    assert timeline.after_burst == 12  # the last 2 first requests and the 10 retries
    assert timeline.first_rate == pytest.approx(200, rel=0.01)
    assert timeline.rate < timeline.first_rate / 1.5  # the retries stretch the window
    assert sum(timeline.histogram[:5]) == 200 and timeline.histogram[5:] == [0, 0, 0, 0, 10]


def test_render_takes_the_median_run_by_rate() -> None:
    runs = [
        describe([i / r for i in range(100)], [i / r for i in range(100)]) for r in (50, 100, 200)
    ]
    table = render({"aiohttp": runs})
    assert "| aiohttp | 100 |" in table
