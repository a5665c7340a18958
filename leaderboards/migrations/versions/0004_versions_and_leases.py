"""checkpoint versions (pinned revisions) and eval-run leases

- `checkpoints.revision`: the Hub commit a `hub:` checkpoint is pinned to (or its weights' sha256).
- `samples.checkpoint_version`, `eval_runs.checkpoint_version`: the version a sample / run was made
  with, so boards show it and never mix versions. Existing rows get '' (unknown version).
- `eval_runs.worker_id`, `eval_runs.lease_expires_at`: a running run is leased by one worker and
  renewed by its heartbeat; another worker takes it over once the lease has expired.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ADD/DROP COLUMN (no table rebuild): SQLite supports both for these columns, and a rebuild of
# `checkpoints` would trip the foreign keys that point at it.
COLUMNS = (
    ("checkpoints", sa.Column("revision", sa.String(length=100), nullable=True)),
    ("samples", sa.Column("checkpoint_version", sa.String(length=100), nullable=False, server_default="")),
    ("eval_runs", sa.Column("checkpoint_version", sa.String(length=100), nullable=False, server_default="")),
    ("eval_runs", sa.Column("worker_id", sa.String(length=100), nullable=True)),
    ("eval_runs", sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True)),
)


def upgrade() -> None:
    for table, column in COLUMNS:
        op.add_column(table, column)


def downgrade() -> None:
    for table, column in reversed(COLUMNS):
        op.drop_column(table, column.name)
