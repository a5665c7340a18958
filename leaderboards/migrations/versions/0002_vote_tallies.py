"""vote_tallies: per (model_a, model_b, outcome) vote counts, backfilled from existing votes

The arena board reads these counts instead of scanning every vote. From this revision on, each vote
updates its tally in the same transaction (leaderboards.arena.Arena.record_vote).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "vote_tallies",
        sa.Column("model_a", sa.String(length=200), nullable=False),
        sa.Column("model_b", sa.String(length=200), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "outcome IN ('model_a', 'model_b', 'tie', 'tie (bothbad)')", name=op.f("ck_vote_tallies_outcome")
        ),
        sa.ForeignKeyConstraint(["model_a"], ["checkpoints.id"], name=op.f("fk_vote_tallies_model_a_checkpoints")),
        sa.ForeignKeyConstraint(["model_b"], ["checkpoints.id"], name=op.f("fk_vote_tallies_model_b_checkpoints")),
        sa.PrimaryKeyConstraint("model_a", "model_b", "outcome", name=op.f("pk_vote_tallies")),
    )
    # Backfill from the votes already stored (a populated database keeps its board).
    op.execute(
        "INSERT INTO vote_tallies (model_a, model_b, outcome, n) "
        "SELECT battles.model_a, battles.model_b, votes.outcome, COUNT(*) "
        "FROM votes JOIN battles ON battles.id = votes.battle_id "
        "GROUP BY battles.model_a, battles.model_b, votes.outcome"
    )


def downgrade() -> None:
    op.drop_table("vote_tallies")
