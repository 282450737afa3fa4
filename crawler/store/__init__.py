"""Storage: snapshots, nodes and fetched bodies in SQLite (default) or PostgreSQL.

    store = Store.open(settings.store.url())     # creates the file, upgrades the schema
    snapshot_id = store.begin_snapshot(source, now)
    store.save_nodes(snapshot_id, batch)         # repeatable: upserts by (snapshot, key)
    store.finish_snapshot(snapshot_id, finished_at=..., outcome=..., summary=...)

Schema changes are Alembic migrations in `migrations/versions/`, applied by `Store.open`.
"""

from __future__ import annotations

from crawler.store.engine import alembic_config, translate_error, upgrade_schema
from crawler.store.repository import HistoryEntry, PreviousFetch, SnapshotInfo, Store

__all__ = [
    "HistoryEntry",
    "PreviousFetch",
    "SnapshotInfo",
    "Store",
    "alembic_config",
    "translate_error",
    "upgrade_schema",
]
