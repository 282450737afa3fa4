"""Fetched bodies, kept once per content: zlib-compressed, keyed by their sha256."""

from __future__ import annotations

import hashlib
import zlib
from collections.abc import Sequence
from datetime import UTC, datetime

from sqlalchemy import select

from crawler.errors import StoreError
from crawler.store.base import StoreBase, guarded
from crawler.store.tables import bodies

# zlib is in the stdlib and shrinks HTML 3-6x; zstd would be a little better but a new dependency.
BODY_COMPRESSION_LEVEL = 6


class BodyStore(StoreBase):
    """The `bodies` table: put a body once, get it back by its digest."""

    @guarded
    def put_body(self, data: bytes) -> str:
        """Store a body once per content (zlib-compressed) and return its sha256 hex."""
        digest = hashlib.sha256(data).hexdigest()
        if self.has_body(digest):
            return digest
        stmt = self._insert(bodies).on_conflict_do_nothing()
        with self._write() as conn, conn.begin():
            conn.execute(stmt, _row(digest, data, datetime.now(UTC)))
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
        rows = [_row(digest, data, now) for digest, data in wanted.items() if digest not in present]
        if rows:
            stmt = self._insert(bodies).on_conflict_do_nothing()
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


def _row(digest: str, data: bytes, now: datetime) -> dict[str, object]:
    """A `bodies` row: the size as fetched, the data compressed."""
    return {
        "sha256": digest,
        "size": len(data),
        "created_at": now,
        "data": zlib.compress(data, BODY_COMPRESSION_LEVEL),
    }
