"""Watches remember whether the config file declared them: `watches.from_config`.

A config sync owns the watches it created, and only those: one whose `[[watch]]` entry is
gone is disabled, while watches added by `crawler watch add` or the dashboard keep running.
Existing watches are taken as added by hand (false): a config entry still sets their schedule,
but removing the entry leaves them running, as before this revision.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    """Add `watches.from_config` (false for every existing watch)."""
    with op.batch_alter_table("watches") as batch:
        batch.add_column(
            sa.Column("from_config", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    """Drop `watches.from_config`."""
    with op.batch_alter_table("watches") as batch:
        batch.drop_column("from_config")
