"""Read-only questions the dashboard (and `crawler show --format html`) asks the store.

Watches come from `crawler.store.watches`; the aggregates behind /metrics are read with
SQLAlchemy Core over `crawler.store.tables`. Nothing in this module writes. Every
SQLAlchemy error leaves as a one-line `StoreError`, as in the Store.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError

from crawler.model import Node, Outcome, Snapshot, Verdict
from crawler.store import HistoryEntry, SnapshotInfo, Store, translate_error
from crawler.store import watches as watch_store
from crawler.store.tables import nodes, snapshots, watches
from crawler.store.watches import Watch

TIMELINE_LIMIT = 30  # past runs shown per link
# Fetch latency buckets in seconds (Prometheus `le`), from a fast local answer to a timeout.
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


@dataclass(frozen=True, slots=True)
class DeadLink:
    """A dead link in the latest snapshot of a watched article."""

    watch_id: int
    source: str
    snapshot_id: int
    node: Node
    number: int  # the node's number in the snapshot's report (anchor `#n<number>`)
    parent_url: str | None
    dead_since: datetime | None


@dataclass(frozen=True, slots=True)
class Metrics:
    """What /metrics reports, read from the store at one moment."""

    runs: dict[str, int]
    links: dict[str, int]
    latency_buckets: list[tuple[float, int]]  # (le seconds, cumulative count)
    latency_count: int
    latency_sum: float
    watches: dict[str, int]  # enabled / disabled
    queue_depth: int


def _read(store: Store, stmt: Any) -> list[Any]:
    """Run a SELECT and return its rows; database errors become StoreError."""
    try:
        with store.engine.connect() as conn:
            return list(conn.execute(stmt).all())
    except SQLAlchemyError as exc:
        raise translate_error(exc, store.location) from exc


def check_database(store: Store) -> None:
    """Raise StoreError unless the database answers a trivial query."""
    _read(store, select(func.count()).select_from(snapshots))


def list_watches(store: Store) -> list[Watch]:
    """Every watch: enabled ones first, soonest next run first."""
    far = datetime.max.replace(tzinfo=UTC)
    rows = watch_store.list_watches(store)
    return sorted(rows, key=lambda w: (not w.enabled, w.next_run_at or far, w.watch_id))


def snapshot_info(store: Store, snapshot_id: int) -> SnapshotInfo | None:
    """One snapshot's row (watch id included), or None."""
    return store.snapshot_info(snapshot_id)


def report_timelines(store: Store, snapshot: Snapshot) -> dict[str, list[HistoryEntry]]:
    """Each link's runs up to this snapshot, newest first, if the snapshot is of a watch; else {}.

    Runs after the snapshot are left out, so an old report shows the history as it was.
    """
    if snapshot.snapshot_id is None:
        return {}
    info = snapshot_info(store, snapshot.snapshot_id)
    if info is None or info.watch_id is None:
        return {}
    out: dict[str, list[HistoryEntry]] = {}
    for node in snapshot.root.walk():
        if node.normalized_url in out:
            continue
        entries = store.link_history(node.normalized_url, limit=TIMELINE_LIMIT * 2)
        out[node.normalized_url] = [
            e
            for e in entries
            if (e.started_at, e.snapshot_id) <= (info.started_at, info.snapshot_id)
        ][:TIMELINE_LIMIT]
    return out


def dead_links(store: Store, watch_rows: Sequence[Watch]) -> list[DeadLink]:
    """Dead links in the latest snapshot of each watched source, once per source.

    That is the watch's own last snapshot (judged with history: `dead` only after
    `dead_after_runs`), or, for a watch that has none yet, the source's latest finished one.
    A later ad-hoc `crawler crawl` of the same source does not override the watch's judgement.
    """
    found: list[DeadLink] = []
    seen: set[str] = set()
    for watch in watch_rows:
        if watch.source in seen:
            continue
        seen.add(watch.source)
        snapshot_id = watch.last_snapshot_id or store.latest_snapshot_id(watch.source)
        if snapshot_id is None:
            continue
        snapshot = store.load_snapshot(snapshot_id)
        found += _dead_in(store, watch, snapshot_id, snapshot)
    return found


def _dead_in(store: Store, watch: Watch, snapshot_id: int, snapshot: Snapshot) -> list[DeadLink]:
    """The dead, non-duplicate nodes of one snapshot, with their parent and dead-since time."""
    by_key = {node.key: node for node in snapshot.root.walk()}
    out: list[DeadLink] = []
    for number, node in enumerate(snapshot.root.walk()):
        if node.verdict is not Verdict.DEAD or node.duplicate_of is not None:
            continue
        parent = by_key.get(node.parent_key) if node.parent_key is not None else None
        out.append(
            DeadLink(
                watch_id=watch.watch_id,
                source=watch.source,
                snapshot_id=snapshot_id,
                node=node,
                number=number,
                parent_url=None if parent is None else parent.url,
                dead_since=dead_since(store.link_history(node.normalized_url)),
            )
        )
    return out


def dead_since(history: Sequence[HistoryEntry]) -> datetime | None:
    """Start of the latest unbroken run of `dead` (history newest first); inconclusive runs skip."""
    since: datetime | None = None
    for entry in history:
        if entry.outcome is Outcome.INCONCLUSIVE:
            continue
        if entry.verdict is not Verdict.DEAD:
            break
        since = entry.started_at
    return since


def read_metrics(store: Store, now: datetime) -> Metrics:
    """Runs by outcome, links by verdict (each watch's last snapshot), latency, queue depth."""
    runs = _read(store, select(snapshots.c.outcome, func.count()).group_by(snapshots.c.outcome))
    latest = select(watches.c.last_snapshot_id).where(watches.c.last_snapshot_id.is_not(None))
    links = _read(
        store,
        select(nodes.c.verdict, func.count())
        .where(nodes.c.snapshot_id.in_(latest), nodes.c.relation != "root")
        .group_by(nodes.c.verdict),
    )
    count, total, buckets = _latency(store)
    enabled = _read(store, select(watches.c.enabled, func.count()).group_by(watches.c.enabled))
    due = _read(
        store,
        select(func.count()).where(watches.c.enabled.is_(True), watches.c.next_run_at <= now),
    )
    return Metrics(
        runs={str(outcome): int(n) for outcome, n in runs},
        links={str(verdict): int(n) for verdict, n in links},
        latency_buckets=buckets,
        latency_count=count,
        latency_sum=total,
        watches={("enabled" if flag else "disabled"): int(n) for flag, n in enabled},
        queue_depth=int(due[0][0]),
    )


def _latency(store: Store) -> tuple[int, float, list[tuple[float, int]]]:
    """Count, sum (seconds) and cumulative bucket counts of every stored fetch's elapsed time."""
    ms = nodes.c.elapsed_ms
    columns = [func.count(ms), func.coalesce(func.sum(ms), 0.0)]
    columns += [
        func.coalesce(func.sum(case((ms <= le * 1000, 1), else_=0)), 0) for le in LATENCY_BUCKETS
    ]
    stmt = select(*columns).where(ms.is_not(None), nodes.c.duplicate_of.is_(None))
    row = _read(store, stmt)[0]
    buckets = [(le, int(n)) for le, n in zip(LATENCY_BUCKETS, row[2:], strict=True)]
    return int(row[0]), float(row[1]) / 1000, buckets
