"""character probes ("who can draw X?")

- `probe_results`: one checkpoint version's answer for a typed name, language, seed count and judge
  (the cache: the same question is answered without generating again).
- `probe_asks`: how often each name was asked for, per language (the maintainers' shortlist for the
  `characters` suite), and when it was promoted.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "probe_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("checkpoint_id", sa.String(length=200), nullable=False),
        sa.Column("checkpoint_version", sa.String(length=100), nullable=False),
        sa.Column("seeds", sa.Integer(), nullable=False),
        sa.Column("judge_id", sa.String(length=200), nullable=False),
        sa.Column("decided_by", sa.String(length=16), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column("n", sa.Integer(), nullable=False),
        sa.Column("samples", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probe_results")),
        sa.UniqueConstraint("name_key", "language", "checkpoint_id", "checkpoint_version", "seeds", "judge_id",
                            name="uq_probe_results_key"),
    )
    op.create_table(
        "probe_asks",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name_key", sa.String(length=200), nullable=False),
        sa.Column("language", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("last_asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("promoted_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_probe_asks")),
        sa.UniqueConstraint("name_key", "language", name="uq_probe_asks_name_language"),
    )


def downgrade() -> None:
    op.drop_table("probe_asks")
    op.drop_table("probe_results")
