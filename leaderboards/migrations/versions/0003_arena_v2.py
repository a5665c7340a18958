"""arena v2: undoable votes, battle categories, clean-up marks, battle request budget

- votes: `undone_at` (an undone vote stays on record) and `blind` (false for a vote cast on a battle
  after its earlier vote was undone, i.e. after the names were shown). UNIQUE(battle_id) becomes a
  unique index over the live votes only (`WHERE undone_at IS NULL`), plus a plain index on battle_id.
- battles: `language` ('custom' for free-text prompts) and `tier` (character suites), backfilled for
  battles that reused stored eval samples; `expired_at` and `images_deleted` (the clean-up job).
- battle_requests: one row per admitted request for a new battle (exact per-session/IP budgets).

Downgrade drops the undo history: undone votes are deleted (the old UNIQUE(battle_id) allows one vote
per battle), live votes are kept and the tallies are rebuilt from them (as the old code counted them).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LIVE = sa.text("undone_at IS NULL")


def upgrade() -> None:
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("undone_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("blind", sa.Boolean(), server_default=sa.text("true"), nullable=False))
        batch_op.drop_constraint("uq_votes_battle_id", type_="unique")
        batch_op.create_index("ix_votes_battle", ["battle_id"], unique=False)
        batch_op.create_index(
            "uq_votes_live_battle", ["battle_id"], unique=True, sqlite_where=LIVE, postgresql_where=LIVE
        )

    # Plain ALTERs (no batch): SQLite adds columns in place, and recreating `battles` would trip
    # the foreign keys that point at it.
    op.add_column("battles", sa.Column("language", sa.String(length=16), server_default="custom", nullable=False))
    op.add_column("battles", sa.Column("tier", sa.String(length=32), nullable=True))
    op.add_column("battles", sa.Column("expired_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("battles", sa.Column("images_deleted", sa.Boolean(), server_default=sa.text("false"), nullable=False))
    op.create_index("ix_battles_expired_expires", "battles", ["expired_at", "expires_at"], unique=False)
    op.create_index("ix_battles_language_tier", "battles", ["language", "tier"], unique=False)

    op.create_table(
        "battle_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("session_hash", sa.String(length=64), nullable=True),
        sa.Column("ip_hash", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_battle_requests")),
    )
    with op.batch_alter_table("battle_requests", schema=None) as batch_op:
        batch_op.create_index("ix_battle_requests_ip_created", ["ip_hash", "created_at"], unique=False)
        batch_op.create_index("ix_battle_requests_session_created", ["session_hash", "created_at"], unique=False)

    _backfill_categories()


def _backfill_categories() -> None:
    """Battles that reused stored samples get the language (and tier) of the sample's prompt."""
    bind = op.get_bind()
    prompts = [
        row[0]
        for row in bind.execute(sa.text("SELECT DISTINCT prompt FROM battles WHERE image_source = 'samples'"))
    ]
    for prompt in prompts:
        found = bind.execute(
            sa.text(
                "SELECT samples.language, prompts.meta FROM samples "
                "LEFT JOIN prompts ON prompts.id = samples.prompt_id "
                "WHERE samples.prompt_text = :p AND samples.adapters = '' ORDER BY samples.id LIMIT 1"
            ),
            {"p": prompt},
        ).first()
        if found is None:
            continue
        language, meta = found
        if isinstance(meta, str):  # SQLite hands JSON back as text
            meta = json.loads(meta or "null")
        tier = meta.get("tier") if isinstance(meta, dict) else None
        bind.execute(
            sa.text("UPDATE battles SET language = :l, tier = :t WHERE image_source = 'samples' AND prompt = :p"),
            {"l": str(language)[:16], "t": str(tier)[:32] if tier else None, "p": prompt},
        )


def downgrade() -> None:
    with op.batch_alter_table("battle_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_battle_requests_session_created")
        batch_op.drop_index("ix_battle_requests_ip_created")
    op.drop_table("battle_requests")

    op.drop_index("ix_battles_language_tier", table_name="battles")
    op.drop_index("ix_battles_expired_expires", table_name="battles")
    for column in ("images_deleted", "expired_at", "tier", "language"):
        op.drop_column("battles", column)  # SQLite >= 3.35 drops columns in place

    op.execute("DELETE FROM votes WHERE undone_at IS NOT NULL")
    with op.batch_alter_table("votes", schema=None) as batch_op:
        batch_op.drop_index("uq_votes_live_battle")
        batch_op.drop_index("ix_votes_battle")
        batch_op.create_unique_constraint("uq_votes_battle_id", ["battle_id"])
        batch_op.drop_column("blind")
        batch_op.drop_column("undone_at")
    # Before this revision every vote on a generation battle was tallied (non-blind ones included).
    op.execute("DELETE FROM vote_tallies")
    op.execute(
        "INSERT INTO vote_tallies (model_a, model_b, outcome, n) "
        "SELECT battles.model_a, battles.model_b, votes.outcome, COUNT(*) "
        "FROM votes JOIN battles ON battles.id = votes.battle_id WHERE battles.kind = 'generate' "
        "GROUP BY battles.model_a, battles.model_b, votes.outcome"
    )
