"""Cluster tables: one row per dispatched watch run, and the shared per-host request budget.

`watch_runs` keys each run of a watch by (watch_id, due_at), the watch's `next_run_at` when the
dispatcher queued it: at-least-once job delivery then cannot duplicate a run, because a job
whose run is already `done` does nothing. `host_budget` holds one GCRA "theoretical arrival
time" (epoch seconds, the database clock) per `host:port` (see `crawler/budget.py`).

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Create `watch_runs` and `host_budget`."""
    op.create_table(
        "watch_runs",
        sa.Column("watch_id", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("snapshot_id", sa.Integer(), nullable=True),
        sa.Column("worker", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("watch_id", "due_at", name="pk_watch_runs"),
        sa.ForeignKeyConstraint(
            ["watch_id"], ["watches.id"], name="fk_watch_runs_watch_id_watches", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_watch_runs_status", "watch_runs", ["status"])
    op.create_table(
        "host_budget",
        sa.Column("host", sa.Text(), nullable=False),
        sa.Column("tat", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("host", name="pk_host_budget"),
    )


def downgrade() -> None:
    """Drop what this revision created."""
    op.drop_table("host_budget")
    op.drop_index("ix_watch_runs_status", table_name="watch_runs")
    op.drop_table("watch_runs")
