"""the public hub: owners, approval, hidden checkpoints, voided votes, sign-ins, quotas, bans, audit log

- `checkpoints.owner`, `.approval` (existing rows: approved), `.hidden`;
- `eval_runs.owner`, `.gpu_seconds` (the estimate the queue quota counts);
- `votes.voided_at` (a maintainer voided it: kept, never counted);
- new tables `sign_ins`, `usage_events`, `bans`, `audit_log`.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Plain ADD COLUMN (no table rebuild), as in 0004: a rebuild of `checkpoints` would trip its foreign keys.
COLUMNS = (
    ("checkpoints", sa.Column("owner", sa.String(length=200), nullable=True)),
    ("checkpoints", sa.Column("approval", sa.String(length=16), nullable=False, server_default="approved")),
    ("checkpoints", sa.Column("hidden", sa.Boolean(), nullable=False, server_default=sa.text("false"))),
    ("eval_runs", sa.Column("owner", sa.String(length=200), nullable=True)),
    ("eval_runs", sa.Column("gpu_seconds", sa.Float(), nullable=False, server_default=sa.text("0"))),
    ("votes", sa.Column("voided_at", sa.DateTime(timezone=True), nullable=True)),
)


def upgrade() -> None:
    for table, column in COLUMNS:
        op.add_column(table, column)
    op.create_table(
        "sign_ins",
        sa.Column("session_hash", sa.String(length=64), nullable=False),
        sa.Column("user", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_hash", name=op.f("pk_sign_ins")),
    )
    op.create_table(
        "usage_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.Float(), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_usage_events")),
    )
    op.create_index("ix_usage_events_user_action_created", "usage_events", ["user", "action", "created_at"], unique=False)
    op.create_table(
        "bans",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value_hash", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("kind IN ('session', 'ip')", name=op.f("ck_bans_kind")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bans")),
        sa.UniqueConstraint("kind", "value_hash", name="uq_bans_kind_value"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("actor", sa.String(length=200), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=500), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_created", "audit_log", ["created_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_audit_log_created", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("bans")
    op.drop_index("ix_usage_events_user_action_created", table_name="usage_events")
    op.drop_table("usage_events")
    op.drop_table("sign_ins")
    for table, column in reversed(COLUMNS):
        op.drop_column(table, column.name)
