"""Schedules and next-run decisions, with `now` passed in: no clock, no sleeping."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.triggers.cron import CronTrigger
from hypothesis import given
from hypothesis import strategies as st

from crawler.timing import (
    MAX_EVERY,
    add_jitter,
    format_every,
    next_run,
    parse_cron,
    parse_every,
)

NOW = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("15m", 15 * 60),
        ("6h", 6 * 3600),
        ("1d", 86_400),
        ("1h30m", 5400),
        ("1d6h", 86_400 + 6 * 3600),
        ("2m5s", 125),
        ("90", 90),
        (" 2H ", 7200),
    ],
)
def test_parse_every_reads_the_documented_forms(text: str, seconds: int) -> None:
    assert parse_every(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["", "abc", "1.5h", "0", "0s", "0h0m", "-5", "5x", "m", "1m1h", "6 h"]
)
def test_parse_every_rejects_other_text_with_a_clear_message(text: str) -> None:
    with pytest.raises(ValueError, match="invalid interval") as info:
        parse_every(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(30, "30s"), (90, "1m30s"), (5400, "1h30m"), (86_400, "1d"), (90_061, "1d1h1m1s")],
)
def test_format_every_spells_intervals_compactly(seconds: int, text: str) -> None:
    assert format_every(timedelta(seconds=seconds)) == text


@given(st.integers(min_value=1, max_value=int(MAX_EVERY.total_seconds())))
def test_format_every_round_trips_through_parse_every(seconds: int) -> None:
    every = timedelta(seconds=seconds)
    assert parse_every(format_every(every)) == every


@pytest.mark.parametrize("text", ["367d", "3000000d", "99999999999999999999d", "9" * 30])
def test_parse_every_refuses_intervals_beyond_its_bound(text: str) -> None:
    with pytest.raises(ValueError, match=r"must be at most 366d") as info:
        parse_every(text)
    assert repr(text) in str(info.value)
    assert parse_every("366d") == MAX_EVERY


def test_format_every_rejects_empty_intervals() -> None:
    with pytest.raises(ValueError):
        format_every(timedelta(0))


def test_parse_cron_returns_a_trigger() -> None:
    trigger = parse_cron("0 7 * * *")
    assert isinstance(trigger, CronTrigger)
    assert trigger.get_next_fire_time(None, NOW) == datetime(2024, 5, 2, 7, 0, tzinfo=UTC)


@pytest.mark.parametrize("expr", ["* * *", "61 * * * *", "0 25 * * *", "0 7 * * xyz", ""])
def test_parse_cron_rejects_bad_expressions(expr: str) -> None:
    with pytest.raises(ValueError, match="invalid cron expression") as info:
        parse_cron(expr)
    assert "minute hour day month weekday" in str(info.value)


@pytest.mark.parametrize("expr", ["0 0 30 2 *", "0 0 31 4 *", "0 0 31 2,4,6 *"])
def test_parse_cron_refuses_expressions_that_never_fire(expr: str) -> None:
    with pytest.raises(ValueError, match="never fires") as info:
        parse_cron(expr)
    assert repr(expr) in str(info.value)
    assert parse_cron("0 0 29 2 mon").get_next_fire_time(None, NOW) is not None  # rare, not never


# -- interval ---------------------------------------------------------------------------------


def test_interval_watch_never_run_is_due_now() -> None:
    assert next_run(timedelta(hours=6), None, None, NOW) == NOW


def test_interval_watch_runs_every_after_previous() -> None:
    previous = NOW - timedelta(hours=1)
    assert next_run(timedelta(hours=6), None, previous, NOW) == previous + timedelta(hours=6)


def test_interval_watch_exactly_due_runs_now() -> None:
    previous = NOW - timedelta(hours=6)
    assert next_run(timedelta(hours=6), None, previous, NOW) == NOW


def test_missed_interval_runs_coalesce_into_one_run_now() -> None:
    every = timedelta(hours=6)
    previous = NOW - timedelta(days=3)  # twelve runs were missed while the daemon was down
    first = next_run(every, None, previous, NOW)
    assert first == NOW
    # once that single run has happened, the schedule continues from it, not from the backlog
    assert next_run(every, None, first, NOW + timedelta(seconds=5)) == NOW + every


# -- cron -------------------------------------------------------------------------------------


def test_cron_watch_never_run_waits_for_its_first_fire_time() -> None:
    now = datetime(2024, 5, 1, 6, 0, tzinfo=UTC)
    assert next_run(None, "0 7 * * *", None, now) == datetime(2024, 5, 1, 7, 0, tzinfo=UTC)


def test_cron_watch_runs_at_the_next_fire_time_after_previous() -> None:
    previous = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
    now = datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert next_run(None, "0 7 * * *", previous, now) == datetime(2024, 5, 2, 7, 0, tzinfo=UTC)


def test_cron_watch_at_its_fire_time_runs_now() -> None:
    previous = datetime(2024, 4, 30, 7, 0, tzinfo=UTC)
    now = datetime(2024, 5, 1, 7, 0, tzinfo=UTC)
    assert next_run(None, "0 7 * * *", previous, now) == now


def test_missed_cron_runs_coalesce_into_one_run_now() -> None:
    previous = datetime(2024, 4, 28, 7, 0, tzinfo=UTC)  # three 07:00 runs missed
    first = next_run(None, "0 7 * * *", previous, NOW)
    assert first == NOW
    later = NOW + timedelta(seconds=3)
    assert next_run(None, "0 7 * * *", first, later) == datetime(2024, 5, 2, 7, 0, tzinfo=UTC)


def test_cron_reads_the_given_time_zone() -> None:
    now = datetime(2024, 7, 1, 0, 0, tzinfo=UTC)
    due = next_run(None, "0 7 * * *", None, now, timezone="Europe/Berlin")
    assert due == datetime(2024, 7, 1, 5, 0, tzinfo=UTC)  # 07:00 CEST is 05:00 UTC


# -- jitter and argument checks ----------------------------------------------------------------


def test_jitter_delays_within_bounds_and_varies() -> None:
    rng = random.Random(1234)
    previous = NOW - timedelta(minutes=10)
    base = previous + timedelta(hours=1)
    runs = [
        next_run(timedelta(hours=1), None, previous, NOW, jitter=30, rng=rng) for _ in range(200)
    ]
    assert all(base <= run <= base + timedelta(seconds=30) for run in runs)
    assert len(set(runs)) > 100  # the jitter is really drawn, not a constant


def test_jitter_applies_to_a_coalesced_run_without_making_it_early() -> None:
    rng = random.Random(7)
    runs = [next_run(None, "0 7 * * *", NOW - timedelta(days=2), NOW, 10, rng) for _ in range(50)]
    assert all(NOW <= run <= NOW + timedelta(seconds=10) for run in runs)


def test_jitter_zero_is_exact_and_negative_is_refused() -> None:
    assert add_jitter(NOW, 0) == NOW
    with pytest.raises(ValueError, match="jitter"):
        add_jitter(NOW, -1)


def test_next_run_needs_exactly_one_schedule() -> None:
    with pytest.raises(ValueError, match="exactly one schedule"):
        next_run(None, None, None, NOW)
    with pytest.raises(ValueError, match="exactly one schedule"):
        next_run(timedelta(hours=1), "0 7 * * *", None, NOW)


def test_next_run_refuses_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        next_run(timedelta(hours=1), None, None, datetime(2024, 5, 1, 12, 0))
    with pytest.raises(ValueError, match="timezone-aware"):
        next_run(timedelta(hours=1), None, datetime(2024, 5, 1, 11, 0), NOW)
