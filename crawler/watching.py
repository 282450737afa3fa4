"""Run one watch: crawl its source with history and alerts, then update its row.

    run = await run_watch(watch, settings, store, fetcher)

One run is: read the source's recent snapshots as timelines, crawl (sharing the daemon's
`Fetcher`, so per-host limits are global), and, once the crawl's outcome is known but before
its final store write, rewrite verdicts and flags with `history.apply_history` so what is
stored already says `dead` / `newly-dead` / `recovered`. Then the newly-dead and recovered
links go out as alerts (none for an inconclusive run) and the watch row learns how the run
went and when the next one is due. A run that fails (bad source, store error, a bug) comes
back as a `WatchRun` with `error` set: the daemon logs it and retries on the next tick.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from crawler.alerts import deliver_alerts
from crawler.config import Settings, WatchConfig
from crawler.crawl import run_crawl
from crawler.errors import ConfigError, CrawlerError
from crawler.history import FLAP_WINDOW, alert_events, apply_history, first_nodes
from crawler.model import Flag, Snapshot
from crawler.store.watches import (
    FAILED,
    HISTORY_SNAPSHOTS,
    Watch,
    record_run,
    timelines_for,
    upsert_watch,
)
from crawler.timing import next_run, parse_cron, parse_every

if TYPE_CHECKING:
    from crawler.fetch import Fetcher
    from crawler.store import Store

log = logging.getLogger("crawler.watching")

Clock = Callable[[], datetime]
COUNTED_FLAGS = (Flag.NEWLY_DEAD, Flag.RECOVERED, Flag.FLAPPING, Flag.CONTENT_CHANGED)


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class WatchRun:
    """How one run of one watch went: what the daemon logs."""

    watch_id: int
    source: str
    started_at: datetime
    duration: float
    next_run_at: datetime
    outcome: str  # a snapshot outcome, or "failed" when no snapshot came out
    snapshot_id: int | None = None
    counts: dict[str, int] = field(default_factory=dict)
    alerts_sent: int = 0
    alerts_failed: int = 0
    error: str | None = None
    cut_short: bool = False


def history_depth(dead_after: int) -> int:
    """How many earlier snapshots a run reads: enough for streaks and the flapping window."""
    return max(HISTORY_SNAPSHOTS, 2 * dead_after + FLAP_WINDOW)


def watch_settings(watch: Watch, settings: Settings) -> Settings:
    """The settings one watch crawls with: its own depth, if it has one."""
    if watch.depth is None:
        return settings
    crawl = settings.crawl.model_copy(update={"depth": watch.depth})
    return settings.model_copy(update={"crawl": crawl})


def run_counts(snapshot: Snapshot) -> dict[str, int]:
    """Counts for the log line: the snapshot summary's totals plus history flags."""
    summary = snapshot.summary()
    counts = {key: summary[key] for key in ("references", "nodes", "dead")}
    links = first_nodes(snapshot).values()
    for flag in COUNTED_FLAGS:
        counts[flag.value.replace("-", "_")] = sum(1 for node in links if flag in node.flags)
    return counts


async def run_watch(
    watch: Watch,
    settings: Settings,
    store: Store,
    fetcher: Fetcher,
    *,
    clock: Clock = utcnow,
) -> WatchRun:
    """Crawl a watch's source with history and alerts; failures come back in `error`.

    Cancelling the run (daemon shutdown) stores the snapshot as `partial`, records it on
    the watch row and re-raises.
    """
    started, began = clock(), time.monotonic()
    finished: list[Snapshot] = []
    try:
        snapshot = await _crawl_with_history(watch, settings, store, fetcher, finished)
    except asyncio.CancelledError:
        partial = finished[0] if finished else None
        await _record(store, watch, settings, started, partial, clock)
        raise
    except Exception as exc:  # a failing run is logged by the caller, never fatal
        error = str(exc) if isinstance(exc, CrawlerError) else f"{type(exc).__name__}: {exc}"
        upcoming = await _record(store, watch, settings, started, None, clock)
        return WatchRun(
            watch_id=watch.watch_id,
            source=watch.source,
            started_at=started,
            duration=time.monotonic() - began,
            next_run_at=upcoming,
            outcome=FAILED,
            error=error,
        )
    sent, failed = await _alert(snapshot, settings)
    upcoming = await _record(store, watch, settings, started, snapshot, clock)
    return WatchRun(
        watch_id=watch.watch_id,
        source=watch.source,
        started_at=started,
        duration=time.monotonic() - began,
        next_run_at=upcoming,
        outcome=snapshot.outcome.value,
        snapshot_id=snapshot.snapshot_id,
        counts=run_counts(snapshot),
        alerts_sent=sent,
        alerts_failed=failed,
    )


async def _crawl_with_history(
    watch: Watch, settings: Settings, store: Store, fetcher: Fetcher, finished: list[Snapshot]
) -> Snapshot:
    """Read the timelines first (off the event loop), then crawl with the finalize hook."""
    dead_after = settings.history.dead_after_runs
    limit = history_depth(dead_after)
    timelines = await asyncio.to_thread(timelines_for, store, watch.source, None, limit)

    def finalize(snapshot: Snapshot) -> None:
        apply_history(snapshot, timelines, dead_after)
        finished.append(snapshot)

    return await run_crawl(
        watch.source,
        watch_settings(watch, settings),
        store=store,
        fetcher=fetcher,
        watch_id=watch.watch_id,
        finalize=finalize,
    )


async def _alert(snapshot: Snapshot, settings: Settings) -> tuple[int, int]:
    """Send newly-dead / recovered alerts; (targets reached, targets failed)."""
    events = alert_events(snapshot)
    if not events:
        return 0, 0
    results = await deliver_alerts(snapshot, events, settings.alerts)
    sent = sum(1 for r in results if r.ok)
    return sent, len(results) - sent


async def _record(
    store: Store,
    watch: Watch,
    settings: Settings,
    started: datetime,
    snapshot: Snapshot | None,
    clock: Clock,
) -> datetime:
    """Write the run onto the watch row; the next run time is returned even if that fails."""
    upcoming = next_run(watch.every, watch.cron, started, clock(), settings.daemon.jitter_seconds)
    outcome = snapshot.outcome.value if snapshot is not None else FAILED
    snapshot_id = snapshot.snapshot_id if snapshot is not None else None
    try:
        await asyncio.to_thread(
            record_run,
            store,
            watch.watch_id,
            started_at=started,
            outcome=outcome,
            snapshot_id=snapshot_id,
            next_run_at=upcoming,
        )
    except CrawlerError as exc:  # the run itself is over; the next tick tries again
        log.warning("cannot record the run of watch %d: %s", watch.watch_id, exc)
    return upcoming


def schedule_error(config: WatchConfig) -> str | None:
    """What is wrong with a configured watch's schedule, or None when it is fine."""
    if (config.every is None) == (config.cron is None):
        return "give exactly one of 'every' and 'cron'"
    try:
        if config.every is not None:
            parse_every(config.every)
        if config.cron is not None:
            parse_cron(config.cron)
    except ValueError as exc:
        return str(exc)
    return None


def sync_config_watches(store: Store, configs: Sequence[WatchConfig], now: datetime) -> list[Watch]:
    """Upsert every `[[watch]]` of the config by source; returns those added or changed.

    Every entry is checked before any is written: ConfigError names the first bad one.
    """
    for index, config in enumerate(configs):
        error = schedule_error(config)
        if error is not None:
            raise ConfigError(f"config: watch[{index}] ({config.source}): {error}")
    changed: list[Watch] = []
    for config in configs:
        every = parse_every(config.every) if config.every is not None else None
        watch, touched = upsert_watch(
            store, config.source, now=now, every=every, cron=config.cron, depth=config.depth
        )
        if touched:
            changed.append(watch)
    return changed
