"""Initial schema: watches, snapshots, nodes, bodies.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create the four tables and their lookup indexes (JSON is text, datetimes carry a zone)."""
    op.create_table(
        "watches",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("every_seconds", sa.Integer(), nullable=True),
        sa.Column("cron", sa.String(200), nullable=True),
        sa.Column("depth", sa.Integer(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_run_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_outcome", sa.String(20), nullable=True),
        sa.Column("last_snapshot_id", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_watches"),
    )
    op.create_index("ix_watches_next_run_at", "watches", ["next_run_at"])

    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("watch_id", sa.Integer(), nullable=True),
        sa.Column("insecure", sa.Boolean(), nullable=False),
        sa.Column("settings", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_snapshots"),
        sa.ForeignKeyConstraint(
            ["watch_id"], ["watches.id"], name="fk_snapshots_watch_id_watches", ondelete="SET NULL"
        ),
    )
    op.create_index("ix_snapshots_source_started_at", "snapshots", ["source", "started_at"])
    op.create_index("ix_snapshots_started_at", "snapshots", ["started_at"])
    op.create_index("ix_snapshots_outcome", "snapshots", ["outcome"])

    op.create_table(
        "nodes",
        sa.Column("snapshot_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Integer(), nullable=False),
        sa.Column("parent_key", sa.Integer(), nullable=True),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("normalized_url", sa.Text(), nullable=False),
        sa.Column("final_url", sa.Text(), nullable=True),
        sa.Column("relation", sa.String(20), nullable=False),
        sa.Column("depth", sa.Integer(), nullable=False),
        sa.Column("verdict", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("redirects", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("flags", sa.Text(), nullable=False),
        sa.Column("duplicate_of", sa.Text(), nullable=True),
        sa.Column("duplicate_kind", sa.String(20), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("canonical_url", sa.Text(), nullable=True),
        sa.Column("published", sa.Text(), nullable=True),
        sa.Column("content_sha256", sa.String(64), nullable=True),
        sa.Column("content_type", sa.Text(), nullable=True),
        sa.Column("elapsed_ms", sa.Float(), nullable=True),
        sa.Column("etag", sa.Text(), nullable=True),
        sa.Column("last_modified", sa.Text(), nullable=True),
        sa.Column("line", sa.Integer(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("fetched_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("snapshot_id", "key", name="pk_nodes"),
        sa.ForeignKeyConstraint(
            ["snapshot_id"],
            ["snapshots.id"],
            name="fk_nodes_snapshot_id_snapshots",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_nodes_normalized_url", "nodes", ["normalized_url"], postgresql_using="hash")
    op.create_index("ix_nodes_content_sha256", "nodes", ["content_sha256"])

    op.create_table(
        "bodies",
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sha256", name="pk_bodies"),
    )


def downgrade() -> None:
    """Drop everything this revision created."""
    op.drop_table("bodies")
    op.drop_table("nodes")
    op.drop_table("snapshots")
    op.drop_table("watches")
