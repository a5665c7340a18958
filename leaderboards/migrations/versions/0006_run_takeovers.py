"""eval-run takeovers

- `eval_runs.takeovers`: how often the run was claimed from a worker whose lease had expired (its
  worker died); the board shows such a running run as "resuming". Existing rows get 0.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain ADD/DROP COLUMN (no table rebuild), as in 0004 and 0005.
COLUMNS = (
    ("eval_runs", sa.Column("takeovers", sa.Integer(), nullable=False, server_default=sa.text("0"))),
)


def upgrade() -> None:
    for table, column in COLUMNS:
        op.add_column(table, column)


def downgrade() -> None:
    for table, column in reversed(COLUMNS):
        op.drop_column(table, column.name)
