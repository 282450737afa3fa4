"""Pure time decisions for watches: parse a schedule, decide when a watch runs next.

APScheduler 3.x runs the daemon; this module only decides. Every function takes the
current time as an argument (as APScheduler's `get_next_fire_time(previous, now)` does),
so the tests need no clock and no sleeping.

Choices made on purpose:
- Missed runs coalesce into ONE run at `now`, for interval and cron schedules alike: a
  daemon that was down for three days runs a 6-hourly watch once on start, not twelve times,
  and a daily cron watch whose 07:00 passed while it was down runs once on start too.
- A cron watch that has never run waits for its first fire time; an interval watch that
  has never run is due at once.
- Jitter only ever delays, by a uniform [0, jitter] seconds, so no run starts before it is
  due (APScheduler 3's `_apply_jitter` adds [-jitter, +jitter]; we do not run early).
- Cron expressions are read in UTC unless a time zone is passed. Note APScheduler 3.x
  numbers weekdays from Monday = 0 (its issue #286); prefer names (`mon-fri`) in configs.
"""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta, tzinfo

from apscheduler.triggers.cron import CronTrigger

_UNITS: tuple[tuple[str, int], ...] = (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1))
_EVERY_RE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")
EVERY_EXAMPLES = "30s, 15m, 6h, 1d, 1h30m or a number of seconds such as 90"
MAX_EVERY = timedelta(days=366)  # a yearly check at most; far beyond, datetimes overflow
# Any start works to ask whether a crontab fires at all: without a year field, one that fires
# once fires again within 28 years (29 February on a given weekday is the rarest).
_CRON_PROBE = datetime(2000, 1, 1, tzinfo=UTC)


def parse_every(text: str) -> timedelta:
    """Read an interval such as "30s", "15m", "6h", "1d", "1h30m" or "90" (seconds)."""
    cleaned = text.strip().lower()
    if cleaned.isdigit():
        seconds = int(cleaned)
    else:
        match = _EVERY_RE.fullmatch(cleaned)
        if not cleaned or match is None:
            raise ValueError(f"invalid interval {text!r}: expected {EVERY_EXAMPLES}")
        counts = zip(match.groups(), _UNITS, strict=True)
        seconds = sum(int(value) * size for value, (_, size) in counts if value)
    if seconds <= 0:
        raise ValueError(f"invalid interval {text!r}: must be longer than 0 seconds")
    if seconds > MAX_EVERY.total_seconds():
        raise ValueError(f"invalid interval {text!r}: must be at most {format_every(MAX_EVERY)}")
    return timedelta(seconds=seconds)


def format_every(every: timedelta) -> str:
    """Spell an interval the way `parse_every` reads it, e.g. "1h30m"; rounded to whole seconds."""
    seconds = round(every.total_seconds())
    if seconds <= 0:
        raise ValueError(f"interval must be longer than 0 seconds, got {every}")
    parts: list[str] = []
    for unit, size in _UNITS:
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def parse_cron(expr: str, timezone: tzinfo | str = UTC) -> CronTrigger:
    """Read a five-field crontab expression (minute hour day month weekday) into a trigger.

    An expression that names no real date (`0 0 30 2 *`) is refused: it would never fire.
    """
    try:
        trigger = CronTrigger.from_crontab(expr.strip(), timezone=timezone)
    except (ValueError, TypeError, LookupError) as exc:
        raise ValueError(
            f"invalid cron expression {expr!r}: {exc} "
            "(expected five fields: minute hour day month weekday, e.g. '0 7 * * *')"
        ) from exc
    if trigger.get_next_fire_time(None, _CRON_PROBE) is None:
        raise ValueError(f"invalid cron expression {expr!r}: it never fires (no such date)")
    return trigger


def next_run(
    every: timedelta | None,
    cron: str | None,
    previous: datetime | None,
    now: datetime,
    jitter: float = 0,
    rng: random.Random | None = None,
    timezone: tzinfo | str = UTC,
) -> datetime:
    """When a watch runs next: its due time, or `now` once if it was due or missed; plus jitter."""
    if (every is None) == (cron is None):
        raise ValueError("a watch needs exactly one schedule: an interval or a cron expression")
    _require_aware(now, "now")
    if previous is not None:
        _require_aware(previous, "previous")
    if every is not None:
        due = _next_interval(every, previous, now)
    else:
        assert cron is not None  # checked above; narrows the type for mypy
        due = _next_cron(parse_cron(cron, timezone), previous, now)
    return add_jitter(due, jitter, rng)


def _next_interval(every: timedelta, previous: datetime | None, now: datetime) -> datetime:
    """previous + every, or now when never run or when that time has passed (coalesced)."""
    if every <= timedelta(0):
        raise ValueError(f"interval must be longer than 0 seconds, got {every}")
    if previous is None:
        return now
    return max(previous + every, now)


def _next_cron(trigger: CronTrigger, previous: datetime | None, now: datetime) -> datetime:
    """The first fire time after `previous`, or now when that one has passed (coalesced)."""
    if previous is None:
        return _fire_time_from(trigger, now)
    first = _fire_time_from(trigger, previous + timedelta(microseconds=1))
    return max(first, now)


def _fire_time_from(trigger: CronTrigger, start: datetime) -> datetime:
    """The trigger's first fire time at or after `start`."""
    fire: datetime | None = trigger.get_next_fire_time(None, start)
    if fire is None:  # only a trigger with an end date runs out; from_crontab sets none
        raise ValueError("the cron expression never fires again")
    return fire


def add_jitter(due: datetime, jitter: float, rng: random.Random | None = None) -> datetime:
    """Delay `due` by a uniform random [0, jitter] seconds; never earlier than `due`."""
    if jitter < 0:
        raise ValueError(f"jitter must be 0 or more seconds, got {jitter}")
    if jitter == 0:
        return due
    draw = rng.uniform(0, jitter) if rng is not None else random.uniform(0, jitter)
    return due + timedelta(seconds=draw)


def _require_aware(value: datetime, name: str) -> None:
    """Naive datetimes make cron and interval arithmetic ambiguous across time zones."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")
