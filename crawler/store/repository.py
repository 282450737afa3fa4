"""`Store`: the repository every other stage uses to keep snapshots, nodes and bodies.

One engine per `Store`, made by `Store.open(url)` and passed down; nothing module-level.
Every public method runs in its own short transaction, and every database error leaves
it as a one-line `StoreError` (see `engine.translate_error`).
"""

from __future__ import annotations

import functools
import hashlib
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar

from sqlalchemy import (
    Connection,
    Engine,
    Row,
    Select,
    and_,
    bindparam,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from crawler.errors import StoreError
from crawler.model import Node, Outcome, Snapshot, Verdict
from crawler.store.engine import (
    WRITE,
    describe_url,
    describe_url_text,
    make_engine,
    translate_error,
    upgrade_schema,
)
from crawler.store.rows import build_tree, node_to_row, row_to_node
from crawler.store.tables import bodies, nodes, snapshots

# zlib is in the stdlib and shrinks HTML 3-6x; zstd would be a little better but a new dependency.
BODY_COMPRESSION_LEVEL = 6

_NODE_KEY = ("snapshot_id", "key")
P = ParamSpec("P")
R = TypeVar("R")


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


@dataclass(frozen=True, slots=True)
class PreviousFetch:
    """What the latest fetch of a URL learned, for a conditional re-check."""

    snapshot_id: int
    etag: str | None
    last_modified: str | None
    content_sha256: str | None
    verdict: Verdict
    status_code: int | None
    # What the page said, so a 304 on a page not parsed again keeps its metadata and verdict.
    reason: str | None = None
    title: str | None = None
    canonical_url: str | None = None
    published: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """How one URL fared in one snapshot."""

    snapshot_id: int
    started_at: datetime
    outcome: Outcome
    verdict: Verdict
    status_code: int | None
    reason: str | None


def guarded(method: Callable[Concatenate[Store, P], R]) -> Callable[Concatenate[Store, P], R]:
    """Let no SQLAlchemy error out of a Store method except as a StoreError."""

    @functools.wraps(method)
    def wrapper(self: Store, /, *args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(self, *args, **kwargs)
        except SQLAlchemyError as exc:
            raise translate_error(exc, self.location) from exc

    return wrapper


def _latest_fetches() -> Select[Any]:
    """The latest actual fetch of each URL in the `urls` list: a window function ranks a URL's
    fetches, newest snapshot first. Built once: constructing this select costs some 1.5 ms
    of Python, and a deep crawl asks it for every related story it visits."""
    ranked = (
        select(
            nodes.c.normalized_url,
            nodes.c.snapshot_id,
            nodes.c.etag,
            nodes.c.last_modified,
            nodes.c.content_sha256,
            nodes.c.verdict,
            nodes.c.status_code,
            nodes.c.reason,
            nodes.c.title,
            nodes.c.canonical_url,
            nodes.c.published,
            func.row_number()
            .over(
                partition_by=nodes.c.normalized_url,
                order_by=(snapshots.c.started_at.desc(), snapshots.c.id.desc(), nodes.c.key),
            )
            .label("rank"),
        )
        .join(snapshots, snapshots.c.id == nodes.c.snapshot_id)
        .where(
            nodes.c.normalized_url.in_(bindparam("urls", expanding=True)),
            nodes.c.verdict != Verdict.SKIPPED.value,
        )
        .subquery()
    )
    return select(ranked).where(ranked.c.rank == 1)


_LATEST_FETCHES = _latest_fetches()


class Store:
    """Snapshots, their nodes and fetched bodies in SQLite or PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.location = describe_url(engine.url)

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

    def _write(self) -> Connection:
        """A write transaction (SQLite takes its write lock at BEGIN)."""
        return self.engine.connect().execution_options(**WRITE)

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
        """Mark snapshots left "running" by a crash as "partial"; return their ids.

        `alive` says whether a running snapshot's crawl is still under way (in another
        process, say); those are left alone. Without it every running snapshot counts as
        interrupted, so call it bare only when no crawl is under way.
        """
        running = select(snapshots).where(snapshots.c.outcome == Outcome.RUNNING.value)
        with self._write() as conn, conn.begin():
            infos = [_info(row) for row in conn.execute(running)]
            ids = [i.snapshot_id for i in infos if alive is None or not alive(i)]
            if ids:
                conn.execute(
                    update(snapshots)
                    .where(snapshots.c.id.in_(ids), snapshots.c.outcome == Outcome.RUNNING.value)
                    .values(outcome=Outcome.PARTIAL.value)
                )
            return sorted(ids)

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
        stmt = _dialect_insert(self.engine, nodes)
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

    @guarded
    def previous_fetch(self, normalized_url: str) -> PreviousFetch | None:
        """The latest actual fetch (verdict not "skipped") of a URL in any snapshot."""
        return self.previous_fetches([normalized_url]).get(normalized_url)

    @guarded
    def previous_fetches(self, normalized_urls: Sequence[str]) -> dict[str, PreviousFetch]:
        """`previous_fetch` for many URLs: one query per 500 (`_LATEST_FETCHES`)."""
        found: dict[str, PreviousFetch] = {}
        unique = list(dict.fromkeys(normalized_urls))
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            with self.engine.connect() as conn:
                for row in conn.execute(_LATEST_FETCHES, {"urls": chunk}):
                    found[row.normalized_url] = PreviousFetch(
                        snapshot_id=row.snapshot_id,
                        etag=row.etag,
                        last_modified=row.last_modified,
                        content_sha256=row.content_sha256,
                        verdict=Verdict(row.verdict),
                        status_code=row.status_code,
                        reason=row.reason,
                        title=row.title,
                        canonical_url=row.canonical_url,
                        published=row.published,
                    )
        return found

    @guarded
    def link_history(self, normalized_url: str, limit: int = 100) -> list[HistoryEntry]:
        """How a URL fared in each snapshot, newest first (duplicate nodes left out)."""
        stmt = (
            select(
                snapshots.c.id,
                snapshots.c.started_at,
                snapshots.c.outcome,
                nodes.c.verdict,
                nodes.c.status_code,
                nodes.c.reason,
            )
            .join(snapshots, snapshots.c.id == nodes.c.snapshot_id)
            .where(nodes.c.normalized_url == normalized_url, nodes.c.duplicate_of.is_(None))
            .order_by(snapshots.c.started_at.desc(), snapshots.c.id.desc(), nodes.c.key)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return [
            HistoryEntry(
                snapshot_id=row.id,
                started_at=row.started_at,
                outcome=Outcome(row.outcome),
                verdict=Verdict(row.verdict),
                status_code=row.status_code,
                reason=row.reason,
            )
            for row in rows
        ]

    # -- bodies ------------------------------------------------------------------------------

    @guarded
    def put_body(self, data: bytes) -> str:
        """Store a body once per content (zlib-compressed) and return its sha256 hex."""
        digest = hashlib.sha256(data).hexdigest()
        if self.has_body(digest):
            return digest
        row = {
            "sha256": digest,
            "size": len(data),
            "created_at": datetime.now(UTC),
            "data": zlib.compress(data, BODY_COMPRESSION_LEVEL),
        }
        stmt = _dialect_insert(self.engine, bodies).on_conflict_do_nothing()
        with self._write() as conn, conn.begin():
            conn.execute(stmt, row)
        return digest

    @guarded
    def put_bodies(
        self, datas: Sequence[bytes], *, digests: Sequence[str] | None = None
    ) -> list[str]:
        """Store many bodies at once (one query for what exists, one transaction); their sha256s.

        `digests`, when the caller hashed the bodies already, are their sha256 hex digests.
        """
        if digests is None:
            digests = [hashlib.sha256(data).hexdigest() for data in datas]
        elif len(digests) != len(datas):
            raise ValueError("put_bodies: one digest per body")
        digests = list(digests)
        wanted = dict(zip(digests, datas, strict=True))
        if not wanted:
            return digests
        with self.engine.connect() as conn:
            present = set(
                conn.execute(select(bodies.c.sha256).where(bodies.c.sha256.in_(list(wanted))))
                .scalars()
                .all()
            )
        now = datetime.now(UTC)
        rows = [
            {
                "sha256": digest,
                "size": len(data),
                "created_at": now,
                "data": zlib.compress(data, BODY_COMPRESSION_LEVEL),
            }
            for digest, data in wanted.items()
            if digest not in present
        ]
        if rows:
            stmt = _dialect_insert(self.engine, bodies).on_conflict_do_nothing()
            with self._write() as conn, conn.begin():
                conn.execute(stmt, rows)
        return digests

    @guarded
    def has_body(self, sha256: str) -> bool:
        """True when a body with this sha256 is stored."""
        with self.engine.connect() as conn:
            found = conn.execute(select(bodies.c.sha256).where(bodies.c.sha256 == sha256)).first()
        return found is not None

    @guarded
    def get_body(self, sha256: str) -> bytes | None:
        """The uncompressed body with this sha256, or None if it was never stored."""
        with self.engine.connect() as conn:
            data = conn.execute(select(bodies.c.data).where(bodies.c.sha256 == sha256)).scalar()
        if data is None:
            return None
        try:
            return zlib.decompress(data)
        except zlib.error as exc:
            raise StoreError(f"corrupt database: body {sha256} in {self.location}") from exc

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


def _dialect_insert(engine: Engine, table: Any) -> Any:
    """INSERT with ON CONFLICT support for the engine's dialect (SQLite and PostgreSQL share it)."""
    if engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    if engine.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise StoreError(f"unsupported database {engine.dialect.name!r}: use SQLite or PostgreSQL")


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
