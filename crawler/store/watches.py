"""Watches: articles re-checked on a schedule, kept in the `watches` table next to their snapshots.

The daemon's memory lives here, so schedules survive a restart: `next_run_at` says when a
watch runs next and `last_run_at` when it last started. `from_config` marks the watches a
`[[watch]]` of the config file declared: config syncs own those, and only those. Every
function takes the `Store` and runs in its own short transaction; database errors leave as
one-line `StoreError`s.

`timelines_for` turns a source's recent snapshots into `history.Timelines` in ONE query
(not one per URL), which is what `history.apply_history` needs before a watch run ends.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Row, bindparam, delete, insert, select, update

from crawler.history import LinkState
from crawler.model import Outcome, Verdict
from crawler.store.engine import WRITE
from crawler.store.repository import Store, guarded
from crawler.store.tables import nodes, snapshots, watches
from crawler.timing import format_every, next_run

HISTORY_SNAPSHOTS = 20  # earlier snapshots read per run: streaks, flapping windows and margin
URL_FILTER_MAX = 500  # above this many URLs, filter in Python (bound-parameter limits)
FAILED = "failed"  # `last_outcome` of a run that produced no snapshot (bad source, store error)


@dataclass(frozen=True, slots=True)
class Watch:
    """One watched source, its schedule and how its latest run went."""

    watch_id: int
    source: str
    every: timedelta | None
    cron: str | None
    depth: int | None
    enabled: bool
    created_at: datetime
    last_run_at: datetime | None = None
    next_run_at: datetime | None = None
    last_outcome: str | None = None
    last_snapshot_id: int | None = None
    from_config: bool = False

    @property
    def schedule(self) -> str:
        """The schedule as a user writes it: "every 6h" or "cron 0 7 * * *"."""
        if self.every is not None:
            return f"every {format_every(self.every)}"
        return f"cron {self.cron}"

    def due_after(self, now: datetime, jitter: float = 0) -> datetime:
        """When this watch runs next, judged from its last run (missed runs coalesce to now)."""
        return next_run(self.every, self.cron, self.last_run_at, now, jitter)


def _watch(row: Row[Any]) -> Watch:
    """A Watch from a `watches` row."""
    every = timedelta(seconds=row.every_seconds) if row.every_seconds is not None else None
    return Watch(
        watch_id=row.id,
        source=row.source,
        every=every,
        cron=row.cron,
        depth=row.depth,
        enabled=bool(row.enabled),
        created_at=row.created_at,
        last_run_at=row.last_run_at,
        next_run_at=row.next_run_at,
        last_outcome=row.last_outcome,
        last_snapshot_id=row.last_snapshot_id,
        from_config=bool(row.from_config),
    )


def _schedule_values(every: timedelta | None, cron: str | None) -> dict[str, Any]:
    """Column values for a schedule; exactly one of interval and cron."""
    if (every is None) == (cron is None):
        raise ValueError("a watch needs exactly one schedule: an interval or a cron expression")
    seconds = round(every.total_seconds()) if every is not None else None
    if seconds is not None and seconds <= 0:
        raise ValueError(f"interval must be longer than 0 seconds, got {every}")
    return {"every_seconds": seconds, "cron": cron.strip() if cron else None}


@guarded
def add_watch(
    store: Store,
    source: str,
    *,
    now: datetime,
    every: timedelta | None = None,
    cron: str | None = None,
    depth: int | None = None,
) -> Watch:
    """Add a watch; an interval watch is due at once, a cron watch at its first fire time."""
    wanted = {**_schedule_values(every, cron), "depth": depth, "enabled": True}
    with store.engine.connect().execution_options(**WRITE) as conn, conn.begin():
        return _insert_watch(conn, source, wanted, now=now, every=every, cron=cron)


def _insert_watch(
    conn: Connection,
    source: str,
    wanted: dict[str, Any],
    *,
    now: datetime,
    every: timedelta | None,
    cron: str | None,
) -> Watch:
    """Insert a new watch row: an interval watch due at once, a cron watch at its first fire."""
    first = next_run(every, cron, None, now)
    new = insert(watches).values(**wanted, source=source, created_at=now, next_run_at=first)
    return _watch(conn.execute(new.returning(watches)).one())


@guarded
def upsert_watch(
    store: Store,
    source: str,
    *,
    now: datetime,
    every: timedelta | None = None,
    cron: str | None = None,
    depth: int | None = None,
    from_config: bool = False,
) -> tuple[Watch, bool]:
    """Add a watch for `source`, or update the one there; True when anything was new or changed.

    A changed schedule moves `next_run_at` to what the new schedule says after the last run;
    an unchanged one keeps it, so re-reading the config does not reset anybody's clock. The
    watch is (re-)enabled. The config file owns (`from_config`) only the watches it created: a
    config entry for a source added by hand sets its schedule but never claims it, so removing
    the entry leaves it running; adding a config-owned source by hand takes it over.
    """
    values = _schedule_values(every, cron)
    wanted = {**values, "depth": depth, "enabled": True, "from_config": from_config}
    with store.engine.connect().execution_options(**WRITE) as conn, conn.begin():
        stmt = select(watches).where(watches.c.source == source).order_by(watches.c.id).limit(1)
        row = conn.execute(stmt).first()
        if row is None:
            return _insert_watch(conn, source, wanted, now=now, every=every, cron=cron), True
        wanted["from_config"] = from_config and row.from_config
        if all(getattr(row, key) == value for key, value in wanted.items()):
            return _watch(row), False
        changes = dict(wanted)
        if (row.every_seconds, row.cron) != (values["every_seconds"], values["cron"]):
            changes["next_run_at"] = next_run(every, cron, row.last_run_at, now)
        stmt_update = update(watches).where(watches.c.id == row.id).values(**changes)
        return _watch(conn.execute(stmt_update.returning(watches)).one()), True


@guarded
def disable_config_watches(store: Store, declared: Collection[str]) -> list[Watch]:
    """Disable the enabled watches the config declared before but no longer lists."""
    stmt = (
        update(watches)
        .where(watches.c.from_config.is_(True), watches.c.enabled.is_(True))
        .where(watches.c.source.not_in(sorted(declared)))
        .values(enabled=False)
        .returning(watches)
    )
    with store.engine.connect().execution_options(**WRITE) as conn, conn.begin():
        return sorted((_watch(row) for row in conn.execute(stmt)), key=lambda w: w.watch_id)


@guarded
def get_watch(store: Store, watch_id: int) -> Watch | None:
    """The watch with this id, or None."""
    with store.engine.connect() as conn:
        row = conn.execute(select(watches).where(watches.c.id == watch_id)).first()
    return None if row is None else _watch(row)


@guarded
def list_watches(store: Store, *, enabled_only: bool = False) -> list[Watch]:
    """Every watch, oldest first."""
    stmt = select(watches).order_by(watches.c.id)
    if enabled_only:
        stmt = stmt.where(watches.c.enabled.is_(True))
    with store.engine.connect() as conn:
        return [_watch(row) for row in conn.execute(stmt)]


@guarded
def remove_watch(store: Store, watch_id: int) -> bool:
    """Delete a watch (its snapshots stay, their watch_id set to NULL); False if there was none."""
    with store.engine.connect().execution_options(**WRITE) as conn, conn.begin():
        return conn.execute(delete(watches).where(watches.c.id == watch_id)).rowcount > 0


@guarded
def record_run(
    store: Store,
    watch_id: int,
    *,
    started_at: datetime,
    outcome: str,
    snapshot_id: int | None,
    next_run_at: datetime,
) -> None:
    """Remember how a run went and when the next one is due (a removed watch is ignored)."""
    values: dict[str, Any] = {
        "last_run_at": started_at,
        "last_outcome": outcome,
        "next_run_at": next_run_at,
    }
    if snapshot_id is not None:
        values["last_snapshot_id"] = snapshot_id
    with store.engine.connect().execution_options(**WRITE) as conn, conn.begin():
        conn.execute(update(watches).where(watches.c.id == watch_id).values(**values))


@guarded
def timelines_for(
    store: Store,
    source: str,
    urls: Collection[str] | None = None,
    limit: int = HISTORY_SNAPSHOTS,
) -> dict[str, list[LinkState]]:
    """Each link's states in the latest `limit` finished snapshots of `source`, oldest first.

    One query. A link's state in a snapshot is its first node there (lowest key), as
    `history.build_timelines` does; `urls` (normalized) narrows the result, None keeps all.
    Snapshots still running are left out, so the run being judged is never its own history.
    """
    recent = (
        select(snapshots.c.id, snapshots.c.started_at, snapshots.c.outcome)
        .where(snapshots.c.source == source, snapshots.c.outcome != Outcome.RUNNING.value)
        .order_by(snapshots.c.started_at.desc(), snapshots.c.id.desc())
        .limit(limit)
        .subquery()
    )
    stmt = (
        select(
            recent.c.id,
            recent.c.started_at,
            recent.c.outcome,
            nodes.c.normalized_url,
            nodes.c.verdict,
            nodes.c.content_sha256,
            nodes.c.reason,
        )
        .join(recent, recent.c.id == nodes.c.snapshot_id)
        .order_by(recent.c.started_at, recent.c.id, nodes.c.key)
    )
    wanted = set(urls) if urls is not None else None
    params: dict[str, Any] = {}
    if wanted is not None and len(wanted) <= URL_FILTER_MAX:
        stmt = stmt.where(nodes.c.normalized_url.in_(bindparam("urls", expanding=True)))
        params["urls"] = sorted(wanted)
    with store.engine.connect() as conn:
        rows = conn.execute(stmt, params).all()
    return _rows_to_timelines(rows, wanted)


def _rows_to_timelines(
    rows: Sequence[Row[*tuple[Any, ...]]], wanted: set[str] | None
) -> dict[str, list[LinkState]]:
    """Group ordered rows into timelines, one state per link per snapshot."""
    timelines: dict[str, list[LinkState]] = {}
    seen: set[tuple[int, str]] = set()
    for row in rows:
        key = (row.id, row.normalized_url)
        if key in seen or (wanted is not None and row.normalized_url not in wanted):
            continue
        seen.add(key)
        state = LinkState(
            normalized_url=row.normalized_url,
            verdict=Verdict(row.verdict),
            outcome=Outcome(row.outcome),
            at=row.started_at,
            content_sha256=row.content_sha256,
            snapshot_id=row.id,
            reason=row.reason,
        )
        timelines.setdefault(row.normalized_url, []).append(state)
    return timelines
