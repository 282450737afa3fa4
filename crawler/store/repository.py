"""`Store`: the repository every other stage uses to keep snapshots, nodes and bodies.

One engine per `Store`, made by `Store.open(url)` and passed down; nothing module-level.
Every public method runs in its own short transaction, and every database error leaves
it as a one-line `StoreError` (see `engine.translate_error`). Bodies (`bodies.BodyStore`) and
the queries over earlier fetches of a URL (`fetches.FetchHistory`) are parts of it kept apart.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, Row, and_, func, insert, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from crawler.errors import StoreError
from crawler.model import Node, Outcome, Snapshot
from crawler.store.base import guarded
from crawler.store.bodies import BodyStore
from crawler.store.engine import describe_url_text, make_engine, translate_error, upgrade_schema
from crawler.store.fetches import FetchHistory, HistoryEntry, PreviousFetch
from crawler.store.rows import build_tree, node_to_row, row_to_node
from crawler.store.tables import bodies, nodes, snapshots

__all__ = ["HistoryEntry", "PreviousFetch", "SnapshotInfo", "Store", "guarded"]

_NODE_KEY = ("snapshot_id", "key")


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    """One snapshot's row, without its nodes (for listings)."""

    snapshot_id: int
    source: str
    started_at: datetime
    finished_at: datetime | None
    outcome: Outcome
    summary: dict[str, int]
    watch_id: int | None
    insecure: bool
    settings: dict[str, Any] | None


class Store(BodyStore, FetchHistory):
    """Snapshots, their nodes and fetched bodies in SQLite or PostgreSQL."""

    @classmethod
    def open(cls, url: str, *, upgrade: bool = True) -> Store:
        """Connect (creating SQLite's directory), check the database works, upgrade the schema."""
        try:
            engine = make_engine(url)
        except SQLAlchemyError as exc:  # a malformed URL or a missing driver
            raise translate_error(exc, describe_url_text(url)) from exc
        store = cls(engine)
        try:
            store._check(upgrade)
        except BaseException:
            engine.dispose()
            raise
        return store

    @guarded
    def _check(self, upgrade: bool) -> None:
        """Fail now, not on first use, when the database cannot be opened or read."""
        if upgrade:
            upgrade_schema(self.engine)
        else:
            with self.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")

    def close(self) -> None:
        """Release every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        """Use as a context manager: closed on exit."""
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Close the store."""
        self.close()

    # -- snapshots ---------------------------------------------------------------------------

    @guarded
    def begin_snapshot(
        self,
        source: str,
        started_at: datetime,
        *,
        watch_id: int | None = None,
        insecure: bool = False,
        settings: dict[str, Any] | None = None,
    ) -> int:
        """Record a crawl that has just started ("running") and return its id."""
        values = {
            "source": source,
            "started_at": started_at,
            "outcome": Outcome.RUNNING.value,
            "summary": {},
            "watch_id": watch_id,
            "insecure": insecure,
            "settings": settings,
        }
        with self._write() as conn, conn.begin():
            result = conn.execute(insert(snapshots).values(values).returning(snapshots.c.id))
            return int(result.scalar_one())

    @guarded
    def finish_snapshot(
        self, snapshot_id: int, *, finished_at: datetime, outcome: Outcome, summary: dict[str, int]
    ) -> None:
        """Record how a crawl ended."""
        stmt = (
            update(snapshots)
            .where(snapshots.c.id == snapshot_id)
            .values(finished_at=finished_at, outcome=outcome.value, summary=summary)
        )
        with self._write() as conn, conn.begin():
            if conn.execute(stmt).rowcount == 0:
                raise StoreError(f"no snapshot {snapshot_id} in {self.location}")

    @guarded
    def recover_interrupted(self, alive: Callable[[SnapshotInfo], bool] | None = None) -> list[int]:
        """Mark snapshots left "running" by a crash as "partial", with the summary of the nodes
        they saved; return their ids.

        `alive` says whether a running snapshot's crawl is still under way (in another
        process, say); those are left alone. Without it every running snapshot counts as
        interrupted, so call it bare only when no crawl is under way.
        """
        running = select(snapshots).where(snapshots.c.outcome == Outcome.RUNNING.value)
        with self._write() as conn, conn.begin():
            infos = [_info(row) for row in conn.execute(running)]
            crashed = [i for i in infos if alive is None or not alive(i)]
            for info in crashed:
                conn.execute(
                    update(snapshots)
                    .where(
                        snapshots.c.id == info.snapshot_id,
                        snapshots.c.outcome == Outcome.RUNNING.value,
                    )
                    .values(outcome=Outcome.PARTIAL.value, summary=self._summary(conn, info))
                )
            return sorted(i.snapshot_id for i in crashed)

    def _summary(self, conn: Connection, info: SnapshotInfo) -> dict[str, int]:
        """The summary of a snapshot's saved nodes ({} when none were saved)."""
        root = build_tree(self._nodes(conn, info.snapshot_id))
        if root is None:
            return {}
        return Snapshot(source=info.source, started_at=info.started_at, root=root).summary()

    @guarded
    def load_snapshot(self, snapshot_id: int) -> Snapshot:
        """The snapshot with its node tree rebuilt; StoreError if it is missing or has no nodes."""
        with self.engine.connect() as conn:
            head = conn.execute(select(snapshots).where(snapshots.c.id == snapshot_id)).first()
            if head is None:
                raise StoreError(f"no snapshot {snapshot_id} in {self.location}")
            root = build_tree(self._nodes(conn, snapshot_id))
        if root is None:
            raise StoreError(f"snapshot {snapshot_id} has no saved nodes")
        info = _info(head)
        return Snapshot(
            source=info.source,
            started_at=info.started_at,
            root=root,
            outcome=info.outcome,
            finished_at=info.finished_at,
            snapshot_id=info.snapshot_id,
            insecure=info.insecure,
        )

    @guarded
    def snapshot_info(self, snapshot_id: int) -> SnapshotInfo | None:
        """One snapshot's row (watch id, outcome, summary), or None when there is no such id."""
        with self.engine.connect() as conn:
            row = conn.execute(select(snapshots).where(snapshots.c.id == snapshot_id)).first()
        return None if row is None else _info(row)

    @guarded
    def list_snapshots(self, source: str | None = None, limit: int = 50) -> list[SnapshotInfo]:
        """Snapshots, newest first, optionally of one source only."""
        stmt = select(snapshots).order_by(snapshots.c.started_at.desc(), snapshots.c.id.desc())
        if source is not None:
            stmt = stmt.where(snapshots.c.source == source)
        with self.engine.connect() as conn:
            return [_info(row) for row in conn.execute(stmt.limit(limit))]

    @guarded
    def latest_snapshot_id(self, source: str, *, before: int | None = None) -> int | None:
        """The newest finished snapshot of `source`; with `before`, the newest started before it."""
        stmt = (
            select(snapshots.c.id)
            .where(snapshots.c.source == source, snapshots.c.outcome != Outcome.RUNNING.value)
            .order_by(snapshots.c.started_at.desc(), snapshots.c.id.desc())
            .limit(1)
        )
        if before is not None:
            pivot = select(snapshots.c.started_at).where(snapshots.c.id == before).scalar_subquery()
            stmt = stmt.where(
                or_(
                    snapshots.c.started_at < pivot,
                    and_(snapshots.c.started_at == pivot, snapshots.c.id < before),
                )
            )
        with self.engine.connect() as conn:
            found = conn.execute(stmt).scalar()
        return None if found is None else int(found)

    # -- nodes -------------------------------------------------------------------------------

    @guarded
    def save_nodes(self, snapshot_id: int, nodes_: Sequence[Node]) -> None:
        """Insert or update (by snapshot and key) a batch of nodes in one transaction."""
        if not nodes_:
            return
        saved_at = datetime.now(UTC)
        rows = [node_to_row(snapshot_id, node, saved_at) for node in nodes_]
        stmt = self._insert(nodes)
        keys = [nodes.c.snapshot_id, nodes.c.key]
        changing = {name: stmt.excluded[name] for name in rows[0] if name not in _NODE_KEY}
        with self._write() as conn, conn.begin():
            conn.execute(stmt.on_conflict_do_update(index_elements=keys, set_=changing), rows)

    @guarded
    def saved_nodes(self, snapshot_id: int) -> list[Node]:
        """Every saved node of a snapshot, flat and childless, in key order (to resume a crawl)."""
        with self.engine.connect() as conn:
            return self._nodes(conn, snapshot_id)

    @staticmethod
    def _nodes(conn: Connection, snapshot_id: int) -> list[Node]:
        stmt = select(nodes).where(nodes.c.snapshot_id == snapshot_id).order_by(nodes.c.key)
        return [row_to_node(row._mapping) for row in conn.execute(stmt)]

    # -- counts ------------------------------------------------------------------------------

    @guarded
    def stats(self) -> dict[str, int]:
        """Row counts and body sizes: snapshots, nodes, bodies, body_bytes, body_bytes_stored."""
        with self.engine.connect() as conn:
            body_row = conn.execute(
                select(func.count(), func.sum(bodies.c.size), func.sum(func.length(bodies.c.data)))
            ).one()
            n_snapshots = conn.execute(select(func.count()).select_from(snapshots)).scalar_one()
            n_nodes = conn.execute(select(func.count()).select_from(nodes)).scalar_one()
            return {
                "snapshots": int(n_snapshots),
                "nodes": int(n_nodes),
                "bodies": int(body_row[0]),
                "body_bytes": int(body_row[1] or 0),
                "body_bytes_stored": int(body_row[2] or 0),
            }


def _info(row: Row[Any]) -> SnapshotInfo:
    """A SnapshotInfo from a `snapshots` row."""
    return SnapshotInfo(
        snapshot_id=row.id,
        source=row.source,
        started_at=row.started_at,
        finished_at=row.finished_at,
        outcome=Outcome(row.outcome),
        summary=dict(row.summary),
        watch_id=row.watch_id,
        insecure=bool(row.insecure),
        settings=row.settings,
    )
