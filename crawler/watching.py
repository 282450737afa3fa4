"""Run one watch: crawl its source with history and alerts, then update its row.

    run = await run_watch(watch, settings, store, fetcher)

One run is: read the source's recent snapshots as timelines, crawl (sharing the daemon's
`Fetcher`, so per-host limits are global), and, once the crawl's outcome is known but before
its final store write, rewrite verdicts and flags with `history.apply_history` so what is
stored already says `dead` / `newly-dead` / `recovered`. Then the newly-dead and recovered
links go out as alerts (none for an inconclusive run) and the watch row learns how the run
went and when the next one is due. A run that fails (bad source, store error, a bug) comes
back as a `WatchRun` with `error` set: the daemon logs it and retries on the next tick. A run
cut short (daemon shutdown) stays due: the next daemon runs it again at once.

`watch_source` is what every way of adding a watch stores as its source (a file as an absolute
path), and `sync_config_watches` makes the table agree with the config's `[[watch]]` entries.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from crawler.alerts import deliver_alerts
from crawler.config import Settings, WatchConfig
from crawler.crawl import run_crawl
from crawler.errors import ConfigError, CrawlerError
from crawler.history import FLAP_WINDOW, alert_events, apply_history, first_nodes
from crawler.model import Flag, Snapshot
from crawler.sources import is_url_source
from crawler.store.watches import (
    FAILED,
    HISTORY_SNAPSHOTS,
    Watch,
    disable_config_watches,
    record_run,
    timelines_for,
    upsert_watch,
)
from crawler.timing import next_run, parse_every

if TYPE_CHECKING:
    from crawler.fetch import Fetcher
    from crawler.store import Store

log = logging.getLogger("crawler.watching")

Clock = Callable[[], datetime]
SCHEME_RE = re.compile(r"[a-z][a-z0-9+.-]*:", re.IGNORECASE)  # RFC 3986 §3.1
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
    due_again_if_cut_short: bool = False,
) -> WatchRun:
    """Crawl a watch's source with history and alerts; failures come back in `error`.

    Cancelling the run (daemon shutdown) stores the snapshot as `partial`, records it on
    the watch row and re-raises. With `due_again_if_cut_short` (the daemon), the run stays
    due when it was, so the next daemon runs it again at once, not an interval later. The
    cluster's workers leave it off: there a run is keyed by its due time, and the dispatcher
    queues a watch's next run only for a due time that has no run yet.
    """
    started, began = clock(), time.monotonic()
    finished: list[Snapshot] = []
    try:
        snapshot = await _crawl_with_history(watch, settings, store, fetcher, finished)
    except asyncio.CancelledError:
        partial = finished[0] if finished else None
        if due_again_if_cut_short:
            upcoming = watch.next_run_at or started
        else:
            upcoming = _upcoming(watch, settings, started, clock)
        await _record(store, watch, started, partial, upcoming)
        raise
    except Exception as exc:  # a failing run is logged by the caller, never fatal
        error = str(exc) if isinstance(exc, CrawlerError) else f"{type(exc).__name__}: {exc}"
        upcoming = await _record(
            store, watch, started, None, _upcoming(watch, settings, started, clock)
        )
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
    upcoming = await _record(
        store, watch, started, snapshot, _upcoming(watch, settings, started, clock)
    )
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


def _upcoming(watch: Watch, settings: Settings, started: datetime, clock: Clock) -> datetime:
    """When the watch runs next after a run that started at `started` and is over now."""
    return next_run(watch.every, watch.cron, started, clock(), settings.daemon.jitter_seconds)


async def _record(
    store: Store,
    watch: Watch,
    started: datetime,
    snapshot: Snapshot | None,
    upcoming: datetime,
) -> datetime:
    """Write the run onto the watch row; `upcoming` is returned even if that fails."""
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


def watch_source(source: str, base: Path, *, must_exist: bool = False) -> str:
    """A watch's source as stored: an http(s) URL as given, a file as an absolute path.

    A relative path is resolved against `base` (the current directory), so one file is one
    watch wherever the command ran. ValueError for what a watch can never read: stdin, an
    empty source, another scheme (`ftp:`, `file:`, `javascript:`) and, with `must_exist`, a
    path that is no file.
    """
    text = source.strip()
    if is_url_source(text):
        scheme, rest = text.split(":", 1)
        return f"{scheme.lower()}:{rest}"  # HTTP://x and http://x are one watch
    if not text or text == "-" or SCHEME_RE.match(text):
        raise ValueError(f"unsupported source {source!r}: give a file or an http(s) URL")
    path = os.path.normpath(base / Path(text).expanduser())
    if must_exist and not Path(path).is_file():
        raise ValueError(
            f"{source}: {'a directory, not a file' if Path(path).is_dir() else 'no such file'}"
        )
    return path


def sync_config_watches(
    store: Store, configs: Sequence[WatchConfig], now: datetime, origin: str = "config"
) -> list[Watch]:
    """Make the table agree with the config's `[[watch]]` entries; returns the watches changed.

    Each entry is upserted by source (relative paths resolved against the current directory,
    as `[store] data_dir` is); a watch the config created and no longer lists is disabled. A
    watch added by `crawler watch add` or the dashboard takes its entry's schedule but is never
    the config's, so it is never disabled by it (`store.watches.upsert_watch`). Every source is
    checked before any is written: ConfigError names the first bad one, with `origin` (the
    config file).
    """
    sources: list[str] = []
    for index, config in enumerate(configs):
        try:
            sources.append(watch_source(config.source, Path.cwd()))
        except ValueError as exc:
            raise ConfigError(f"{origin}: watch[{index}] ({config.source}): {exc}") from exc
    changed: list[Watch] = []
    for source, config in zip(sources, configs, strict=True):
        every = parse_every(config.every) if config.every is not None else None
        watch, touched = upsert_watch(
            store, source, now=now, every=every, cron=config.cron, depth=config.depth,
            from_config=True,
        )  # fmt: skip
        if touched:
            changed.append(watch)
    return changed + disable_config_watches(store, sources)
