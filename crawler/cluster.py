"""Cluster mode: a dispatcher queues due watches, workers on any machine run them.

    app = build_app(database_url)                 # Procrastinate on the shared PostgreSQL
    await run_dispatcher(app, store, stop=stop)   # `crawler dispatcher`
    await run_worker(settings, database_url, concurrency=200)   # `crawler worker`

Procrastinate carries the jobs. A run of a watch is keyed by (watch_id, due_at), `due_at`
being the watch's `next_run_at` when it was queued, and has a row in `watch_runs`:
`queued` -> `running` -> `done`. Delivery is at-least-once, so a job first claims its run and
does nothing if the run is already done; a retried job (its worker died: the dispatcher hands
jobs of workers whose heartbeat stopped back to the queue) first looks for a snapshot the
earlier attempt finished, else marks the earlier attempt's snapshot partial and lets
`run_crawl` resume it. Jobs carry `queueing_lock` and `lock` "watch:<id>", so one watch is
never queued twice nor run twice at once; two dispatchers are harmless (an advisory lock per
tick, and the `watch_runs` primary key decides which of them queues a run).

Only the cluster commands import this module: the embedded mode needs neither Procrastinate
nor psycopg (`tests/test_cluster.py` checks).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import procrastinate
from procrastinate.exceptions import AlreadyEnqueued, ProcrastinateException
from sqlalchemy import (
    Connection,
    and_,
    func,
    literal,
    select,
)
from sqlalchemy import update as sql_update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from crawler.budget import HostGate, open_postgres_gate
from crawler.config import Settings
from crawler.errors import ConfigError
from crawler.fetch import Fetcher
from crawler.model import Outcome
from crawler.store import Store
from crawler.store.engine import WRITE
from crawler.store.tables import UTCDateTime, snapshots, watch_runs, watches
from crawler.store.watches import get_watch
from crawler.watching import run_watch

log = logging.getLogger("crawler.cluster")

CRAWL_TASK = "crawler.crawl_watch"
CRAWL_QUEUE = "crawl"
DISPATCH_BATCH = 1000  # runs queued per dispatcher tick at most
DEFAULT_DISPATCH_INTERVAL = 5.0  # seconds between dispatcher ticks
DEFAULT_HEARTBEAT_SECONDS = 10.0  # how often a worker tells PostgreSQL it is alive
DEFAULT_STALLED_AFTER = 60.0  # a worker silent this long is dead: its jobs are queued again
REQUEUE_AFTER_SECONDS = 120.0  # a run `queued` this long without a waiting job is queued again
JOB_RETRIES = 5  # a job that raises (store down, say) is retried with exponential backoff
JOB_RETRY_BASE_SECONDS = 10
_DISPATCH_LOCK_ID = 0x6372617764  # "crawd": one dispatcher tick at a time, cluster-wide

QUEUED, RUNNING, DONE = "queued", "running", "done"


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


# -- URLs ---------------------------------------------------------------------------------------
def is_postgres_url(url: str) -> bool:
    """True for a PostgreSQL URL in SQLAlchemy or libpq form."""
    return url.split(":", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def sqlalchemy_url(url: str) -> str:
    """`postgresql://` (libpq form) as SQLAlchemy's `postgresql+psycopg://`; others unchanged."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgresql", "postgres"):
        return f"postgresql+psycopg://{rest}"
    return url


def libpq_url(url: str) -> str:
    """`postgresql+psycopg://` (SQLAlchemy form) as libpq's `postgresql://`."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme.split("+", 1)[0] in ("postgresql", "postgres"):
        return f"postgresql://{rest}"
    return url


def cluster_url(settings: Settings) -> str:
    """The configured PostgreSQL URL; ConfigError when the store is not PostgreSQL."""
    url = settings.store.url()
    if not is_postgres_url(url):
        raise ConfigError(
            "workers and the dispatcher need PostgreSQL: "
            "set CRAWLER_DATABASE_URL=postgresql://user@host/db (or [store] database_url)"
        )
    return url


# -- the app ------------------------------------------------------------------------------------
def build_app(database_url: str) -> procrastinate.App:
    """A Procrastinate app on `database_url` with the crawl task registered (not yet opened)."""
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(conninfo=libpq_url(database_url))
    )
    retry = procrastinate.RetryStrategy(
        max_attempts=JOB_RETRIES, exponential_wait=JOB_RETRY_BASE_SECONDS
    )
    app.task(name=CRAWL_TASK, queue=CRAWL_QUEUE, pass_context=True, retry=retry)(crawl_watch)
    return app


async def ensure_queue_schema(app: procrastinate.App) -> bool:
    """Install Procrastinate's tables if they are missing; True when it did."""
    row = await app.connector.execute_query_one_async(
        "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS present"
    )
    if row["present"]:
        return False
    await app.schema_manager.apply_schema_async()
    return True


async def crawl_watch(context: procrastinate.JobContext, watch_id: int, due_at: str) -> str:
    """The crawl task: run one due watch once for `due_at` (an ISO datetime)."""
    runtime: Runtime = context.additional_context["runtime"]
    return await runtime.run(watch_id, datetime.fromisoformat(due_at))


async def defer_run(app: procrastinate.App, watch_id: int, due_at: datetime) -> bool:
    """Queue one run; False when a job for this watch is already waiting (queueing lock)."""
    lock = f"watch:{watch_id}"
    deferrer = app.configure_task(CRAWL_TASK, queueing_lock=lock, lock=lock)
    try:
        await deferrer.defer_async(watch_id=watch_id, due_at=due_at.isoformat())
    except AlreadyEnqueued:
        return False
    return True


# -- runs in the store (sync: called through asyncio.to_thread) --------------------------------
@dataclass(frozen=True, slots=True)
class Claim:
    """A run this job now holds: how many attempts it has had, when the first one started."""

    attempts: int
    first_started_at: datetime


def queue_due_runs(
    store: Store, now: datetime, limit: int = DISPATCH_BATCH
) -> list[tuple[int, datetime]]:
    """Record a `queued` run for each due watch without one; [] if another dispatcher is busy."""
    with store.engine.connect().execution_options(**WRITE) as conn, conn.begin():
        if not _try_lock(conn):
            return []
        due = (
            select(watches.c.id, watches.c.next_run_at)
            .where(watches.c.enabled.is_(True), watches.c.next_run_at <= now)
            .where(~_has_run(watches.c.id, watches.c.next_run_at))
            .order_by(watches.c.next_run_at)
            .limit(limit)
        )
        rows = [
            {
                "watch_id": r.id,
                "due_at": r.next_run_at,
                "status": QUEUED,
                "attempts": 0,
                "queued_at": now,
            }
            for r in conn.execute(due)
        ]
        if not rows:
            return []
        stmt = (
            pg_insert(watch_runs)
            .on_conflict_do_nothing()
            .returning(watch_runs.c.watch_id, watch_runs.c.due_at)
        )
        return [(r.watch_id, r.due_at) for r in conn.execute(stmt, rows)]


def _has_run(watch_id: Any, due_at: Any) -> Any:
    """EXISTS: a run for this (watch, due time) is recorded already."""
    key = and_(watch_runs.c.watch_id == watch_id, watch_runs.c.due_at == due_at)
    return select(watch_runs.c.watch_id).where(key).exists()


def _try_lock(conn: Connection) -> bool:
    """Take this tick's cluster-wide advisory lock (released at commit); False if taken."""
    if conn.dialect.name != "postgresql":
        return True
    return bool(
        conn.exec_driver_sql(f"SELECT pg_try_advisory_xact_lock({_DISPATCH_LOCK_ID})").scalar()
    )


def take_stale_runs(store: Store, now: datetime, older_than: float) -> list[tuple[int, datetime]]:
    """Runs queued long ago that never started: their job may be lost, so queue them again."""
    cutoff = now - timedelta(seconds=older_than)
    stmt = (
        sql_update(watch_runs)
        .where(watch_runs.c.status == QUEUED, watch_runs.c.queued_at < cutoff)
        .values(queued_at=now)
        .returning(watch_runs.c.watch_id, watch_runs.c.due_at)
    )
    with store.engine.connect().execution_options(**WRITE) as conn, conn.begin():
        return [(r.watch_id, r.due_at) for r in conn.execute(stmt)]


def claim_run(store: Store, watch_id: int, due_at: datetime, now: datetime) -> Claim | None:
    """Mark a run `running` and count the attempt; None when the run is already done."""
    key = and_(watch_runs.c.watch_id == watch_id, watch_runs.c.due_at == due_at)
    values = {"status": RUNNING, "attempts": watch_runs.c.attempts + 1, "worker": _worker_name()}
    with store.engine.connect().execution_options(**WRITE) as conn, conn.begin():
        # A run queued by hand has no row yet: create it, then claim it like any other.
        conn.execute(
            pg_insert(watch_runs).on_conflict_do_nothing(),
            {
                "watch_id": watch_id,
                "due_at": due_at,
                "status": QUEUED,
                "attempts": 0,
                "queued_at": now,
            },
        )
        stmt = (
            sql_update(watch_runs)
            .where(key, watch_runs.c.status != DONE)
            .values(**values, started_at=_coalesce_started(now))
            .returning(watch_runs.c.attempts, watch_runs.c.started_at)
        )
        row = conn.execute(stmt).first()
    return None if row is None else Claim(row.attempts, row.started_at)


def _coalesce_started(now: datetime) -> Any:
    """`started_at` keeps the first attempt's start (the snapshot it made started after it)."""
    return func.coalesce(watch_runs.c.started_at, literal(now, UTCDateTime))


def finished_snapshot_since(store: Store, watch_id: int, since: datetime) -> int | None:
    """A snapshot of this watch started at or after `since` whose crawl finished, if any."""
    stmt = (
        select(snapshots.c.id)
        .where(
            snapshots.c.watch_id == watch_id,
            snapshots.c.started_at >= since,
            snapshots.c.finished_at.is_not(None),
            snapshots.c.outcome != Outcome.RUNNING.value,
        )
        .order_by(snapshots.c.id.desc())
        .limit(1)
    )
    with store.engine.connect() as conn:
        found = conn.execute(stmt).scalar()
    return None if found is None else int(found)


def finish_run(
    store: Store, watch_id: int, due_at: datetime, now: datetime, snapshot_id: int | None
) -> None:
    """Mark a run done (with the snapshot it made, if any)."""
    key = and_(watch_runs.c.watch_id == watch_id, watch_runs.c.due_at == due_at)
    stmt = (
        sql_update(watch_runs)
        .where(key)
        .values(status=DONE, finished_at=now, snapshot_id=snapshot_id)
    )
    with store.engine.connect().execution_options(**WRITE) as conn, conn.begin():
        conn.execute(stmt)


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


# -- the worker ---------------------------------------------------------------------------------
class Runtime:
    """What every job of one worker process shares: settings, the store and one Fetcher."""

    def __init__(self, settings: Settings, store: Store, fetcher: Fetcher) -> None:
        self.settings = settings
        self.store = store
        self.fetcher = fetcher

    async def run(self, watch_id: int, due_at: datetime) -> str:
        """Run the watch once for `due_at`, unless that run is already done; returns an outcome."""
        store = self.store
        claim = await asyncio.to_thread(claim_run, store, watch_id, due_at, utcnow())
        if claim is None:
            return "already-done"
        if claim.attempts > 1:
            earlier = await asyncio.to_thread(
                finished_snapshot_since, store, watch_id, claim.first_started_at
            )
            if earlier is not None:
                await asyncio.to_thread(finish_run, store, watch_id, due_at, utcnow(), earlier)
                return "already-done"
            # The earlier attempt died mid-crawl (the job lock says nobody else runs this
            # watch): mark its snapshot partial so run_crawl resumes it on any machine.
            await asyncio.to_thread(store.recover_interrupted, lambda i: i.watch_id != watch_id)
        return await self._run_watch(watch_id, due_at)

    async def _run_watch(self, watch_id: int, due_at: datetime) -> str:
        """Crawl with history and alerts (crawler.watching), then mark the run done."""
        watch = await asyncio.to_thread(get_watch, self.store, watch_id)
        if watch is None or not watch.enabled:
            await asyncio.to_thread(finish_run, self.store, watch_id, due_at, utcnow(), None)
            return "dropped"
        result = await run_watch(watch, self.settings, self.store, self.fetcher)
        await asyncio.to_thread(
            finish_run, self.store, watch_id, due_at, utcnow(), result.snapshot_id
        )
        log.info(
            "run watch=%d due=%s outcome=%s snapshot=%s seconds=%.2f%s",
            watch_id, due_at.isoformat(), result.outcome, result.snapshot_id, result.duration,
            f" error={result.error!r}" if result.error else "",
        )  # fmt: skip
        return result.outcome


def host_rate(settings: Settings) -> tuple[float, int]:
    """Requests per second and burst per host, from `[fetch] host_rate` / `host_burst`."""
    rate = settings.fetch.host_rate
    burst = settings.fetch.host_burst
    return float(rate), int(burst)


@contextlib.asynccontextmanager
async def open_gated_fetcher(settings: Settings, gate: HostGate) -> AsyncIterator[Fetcher]:
    """A Fetcher that asks `gate` before every request on the wire (redirects, retries too)."""
    async with Fetcher(settings.fetch, gate=gate) as fetcher:
        yield fetcher


async def run_worker(
    settings: Settings,
    database_url: str,
    *,
    concurrency: int,
    heartbeat: float = DEFAULT_HEARTBEAT_SECONDS,
    rate: float | None = None,
) -> None:
    """Run crawl jobs until SIGTERM/SIGINT (then finish or cut short within the grace period)."""
    app = build_app(database_url)
    store = await asyncio.to_thread(Store.open, sqlalchemy_url(database_url))
    default_rate, burst = host_rate(settings)
    gate = await open_postgres_gate(libpq_url(database_url), rate or default_rate, burst)
    try:
        async with app.open_async(), open_gated_fetcher(settings, gate) as fetcher:
            runtime = Runtime(settings, store, fetcher)
            await app.run_worker_async(
                queues=[CRAWL_QUEUE],
                concurrency=concurrency,
                additional_context={"runtime": runtime},
                update_heartbeat_interval=heartbeat,
                stalled_worker_timeout=max(3 * heartbeat, heartbeat + 1),
                shutdown_graceful_timeout=settings.daemon.grace_seconds,
                delete_jobs="successful",
            )
    finally:
        await gate.pool.close()
        store.close()


# -- the dispatcher -----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Tick:
    """What one dispatcher tick did."""

    queued: int
    requeued: int
    revived: int


async def dispatch_tick(
    app: procrastinate.App, store: Store, now: datetime, *, stalled_after: float
) -> Tick:
    """Queue due runs, re-queue lost ones, hand jobs of dead workers back to the queue."""
    fresh = await asyncio.to_thread(queue_due_runs, store, now)
    queued = await _defer_all(app, fresh)
    stale = await asyncio.to_thread(take_stale_runs, store, now, REQUEUE_AFTER_SECONDS)
    requeued = await _defer_all(app, stale)
    revived = await revive_stalled_jobs(app, stalled_after)
    return Tick(queued, requeued, revived)


async def _defer_all(app: procrastinate.App, runs: Sequence[tuple[int, datetime]]) -> int:
    """Queue each run; how many jobs were actually added."""
    added = 0
    for watch_id, due_at in runs:
        added += await defer_run(app, watch_id, due_at)
    return added


async def revive_stalled_jobs(app: procrastinate.App, stalled_after: float) -> int:
    """Put the jobs of workers silent for `stalled_after` seconds back in the queue."""
    manager = app.job_manager
    jobs = await manager.get_stalled_jobs(queue=CRAWL_QUEUE, seconds_since_heartbeat=stalled_after)
    revived = 0
    for job in jobs:
        try:
            await manager.retry_job(job)
        except ProcrastinateException as exc:  # another dispatcher got there first
            log.info("job %s not retried: %s", job.id, exc)
            continue
        log.info(
            "job %s of a dead worker queued again (watch %s)",
            job.id,
            job.task_kwargs.get("watch_id"),
        )
        revived += 1
    return revived


async def run_dispatcher(
    app: procrastinate.App,
    store: Store,
    stop: asyncio.Event,
    *,
    interval: float = DEFAULT_DISPATCH_INTERVAL,
    stalled_after: float = DEFAULT_STALLED_AFTER,
    once: bool = False,
) -> None:
    """Tick every `interval` seconds until `stop` is set; a failing tick is logged, not fatal."""
    while True:
        try:
            tick = await dispatch_tick(app, store, utcnow(), stalled_after=stalled_after)
        except Exception as exc:  # the database may come back: try again next tick
            log.warning("dispatch failed: %s: %s", type(exc).__name__, exc)
        else:
            if tick.queued or tick.requeued or tick.revived:
                log.info("dispatch queued=%d requeued=%d revived=%d", *_fields(tick))
        if once or stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval)


def _fields(tick: Tick) -> tuple[int, int, int]:
    return tick.queued, tick.requeued, tick.revived
