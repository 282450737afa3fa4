"""The schema as SQLAlchemy Core tables: snapshots, their nodes, stored bodies and watches.

Alembic owns the real schema (`migrations/versions/`); these tables are what the
repository queries with and what `tests/test_store.py` compares the migrated database to.
Datetimes are stored timezone-aware and always come back as UTC; JSON travels as text so
SQLite and PostgreSQL hold the same bytes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    false,
)

# Stable constraint names, so later migrations can drop or alter them on both backends.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware datetime stored as UTC; a naive value is taken to be UTC already."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Convert to UTC; SQLite keeps no offset, so it gets the naive UTC wall time."""
        if value is None:
            return None
        value = as_utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        """Always hand back an aware UTC datetime."""
        return None if value is None else as_utc(value)


class JSONText(TypeDecorator[Any]):
    """Any JSON value kept as compact text (identical on SQLite and PostgreSQL)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        """Serialize; None stays SQL NULL."""
        if value is None:
            return None
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        """Parse back to Python values."""
        return None if value is None else json.loads(value)


def as_utc(value: datetime) -> datetime:
    """The same instant as an aware UTC datetime (naive values are assumed to be UTC)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


metadata = MetaData(naming_convention=NAMING_CONVENTION)

watches = Table(
    "watches",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", Text, nullable=False),
    Column("every_seconds", Integer, nullable=True),
    Column("cron", String(200), nullable=True),
    Column("depth", Integer, nullable=True),
    Column("enabled", Boolean, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_run_at", UTCDateTime, nullable=True),
    Column("next_run_at", UTCDateTime, nullable=True),
    Column("last_outcome", String(20), nullable=True),
    # No foreign key: snapshots already point at watches, and a cycle would complicate migrations.
    Column("last_snapshot_id", Integer, nullable=True),
    # Declared by a `[[watch]]` of the config file, which owns it (migration 0003).
    Column("from_config", Boolean, nullable=False, default=False, server_default=false()),
    Index(None, "next_run_at"),
)

# One row per dispatched run of a watch, keyed by its due time (cluster mode, migration 0002).
watch_runs = Table(
    "watch_runs",
    metadata,
    Column("watch_id", Integer, ForeignKey("watches.id", ondelete="CASCADE"), primary_key=True),
    Column("due_at", UTCDateTime, primary_key=True),
    Column("status", String(20), nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("queued_at", UTCDateTime, nullable=False),
    Column("started_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("snapshot_id", Integer, nullable=True),
    Column("worker", Text, nullable=True),
    Index(None, "status"),
)

# The per-host request budget shared by all workers: a GCRA theoretical arrival time per host.
host_budget = Table(
    "host_budget",
    metadata,
    Column("host", Text, primary_key=True),
    Column("tat", Float, nullable=False),
)

snapshots = Table(
    "snapshots",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", Text, nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("outcome", String(20), nullable=False),
    Column("summary", JSONText, nullable=False),
    Column("watch_id", Integer, ForeignKey("watches.id", ondelete="SET NULL"), nullable=True),
    Column("insecure", Boolean, nullable=False),
    Column("settings", JSONText, nullable=True),
    # list_snapshots / latest_snapshot_id: by source, newest first; recover_interrupted: by outcome.
    Index(None, "source", "started_at"),
    Index(None, "started_at"),
    Index(None, "outcome"),
)

nodes = Table(
    "nodes",
    metadata,
    Column(
        "snapshot_id",
        Integer,
        ForeignKey("snapshots.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("key", Integer, primary_key=True),
    Column("parent_key", Integer, nullable=True),
    Column("url", Text, nullable=False),
    Column("normalized_url", Text, nullable=False),
    Column("final_url", Text, nullable=True),
    Column("relation", String(20), nullable=False),
    Column("depth", Integer, nullable=False),
    Column("verdict", String(20), nullable=False),
    Column("reason", Text, nullable=True),
    Column("status_code", Integer, nullable=True),
    Column("redirects", JSONText, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("flags", JSONText, nullable=False),
    Column("duplicate_of", Text, nullable=True),
    Column("duplicate_kind", String(20), nullable=True),
    Column("title", Text, nullable=True),
    Column("canonical_url", Text, nullable=True),
    Column("published", Text, nullable=True),
    Column("content_sha256", String(64), nullable=True),
    Column("content_type", Text, nullable=True),
    Column("elapsed_ms", Float, nullable=True),
    Column("etag", Text, nullable=True),
    Column("last_modified", Text, nullable=True),
    Column("line", Integer, nullable=True),
    Column("text", Text, nullable=True),
    Column("fetched_at", UTCDateTime, nullable=True),
    # previous_fetch / link_history look nodes up by URL. On PostgreSQL a hash index has no
    # btree row-size limit (about 2.7 kB), which very long tracking URLs could exceed.
    Index(None, "normalized_url", postgresql_using="hash"),
    Index(None, "content_sha256"),
)

bodies = Table(
    "bodies",
    metadata,
    Column("sha256", String(64), primary_key=True),  # of the uncompressed body
    Column("size", Integer, nullable=False),  # uncompressed bytes
    Column("data", LargeBinary, nullable=False),  # zlib, level 6
    Column("created_at", UTCDateTime, nullable=False),
)
