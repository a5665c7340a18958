"""initial schema: checkpoints, adapters, suites, prompts, eval runs, samples, scores, battles, votes

Revision ID: 0001
Revises: (none)
Create Date: 2026-11-26
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('adapters',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('base_family', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=1000), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('trigger_words', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_adapters'))
    )
    op.create_table('checkpoints',
    sa.Column('id', sa.String(length=200), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('family', sa.String(length=64), nullable=False),
    sa.Column('source', sa.String(length=1000), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=True),
    sa.Column('is_demo', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("status IN ('registered', 'available', 'failed', 'retired')", name=op.f('ck_checkpoints_status')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoints'))
    )
    op.create_table('prompt_suites',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('version_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prompt_suites')),
    sa.UniqueConstraint('name', 'version_hash', name='uq_prompt_suites_name_version')
    )
    op.create_table('battles',
    sa.Column('id', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('model_a', sa.String(length=200), nullable=False),
    sa.Column('model_b', sa.String(length=200), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('image_a', sa.String(length=1000), nullable=False),
    sa.Column('image_b', sa.String(length=1000), nullable=False),
    sa.Column('session_hash', sa.String(length=64), nullable=True),
    sa.Column('ip_hash', sa.String(length=64), nullable=True),
    sa.Column('image_source', sa.String(length=16), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("kind IN ('generate', 'edit')", name=op.f('ck_battles_kind')),
    sa.CheckConstraint('model_a <> model_b', name=op.f('ck_battles_distinct_models')),
    sa.ForeignKeyConstraint(['model_a'], ['checkpoints.id'], name=op.f('fk_battles_model_a_checkpoints')),
    sa.ForeignKeyConstraint(['model_b'], ['checkpoints.id'], name=op.f('fk_battles_model_b_checkpoints')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_battles'))
    )
    with op.batch_alter_table('battles', schema=None) as batch_op:
        batch_op.create_index('ix_battles_ip_created', ['ip_hash', 'created_at'], unique=False)
        batch_op.create_index('ix_battles_model_a', ['model_a'], unique=False)
        batch_op.create_index('ix_battles_model_b', ['model_b'], unique=False)
        batch_op.create_index('ix_battles_session_created', ['session_hash', 'created_at'], unique=False)

    op.create_table('eval_runs',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('checkpoint_id', sa.String(length=200), nullable=False),
    sa.Column('suite_id', sa.Integer(), nullable=True),
    sa.Column('suite_name', sa.String(length=200), nullable=False),
    sa.Column('adapters', sa.String(length=1000), nullable=False),
    sa.Column('judge_id', sa.String(length=200), nullable=True),
    sa.Column('judge_version', sa.String(length=200), nullable=True),
    sa.Column('settings', sa.JSON(), nullable=False),
    sa.Column('settings_hash', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('n_generated', sa.Integer(), nullable=False),
    sa.Column('n_reused', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.CheckConstraint("status IN ('queued', 'running', 'complete', 'failed')", name=op.f('ck_eval_runs_status')),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['checkpoints.id'], name=op.f('fk_eval_runs_checkpoint_id_checkpoints')),
    sa.ForeignKeyConstraint(['suite_id'], ['prompt_suites.id'], name=op.f('fk_eval_runs_suite_id_prompt_suites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_eval_runs'))
    )
    with op.batch_alter_table('eval_runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_eval_runs_checkpoint_id'), ['checkpoint_id'], unique=False)
        batch_op.create_index('ix_eval_runs_status_created', ['status', 'created_at'], unique=False)

    op.create_table('prompts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('suite_id', sa.Integer(), nullable=False),
    sa.Column('item_id', sa.String(length=200), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('meta', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['suite_id'], ['prompt_suites.id'], name=op.f('fk_prompts_suite_id_prompt_suites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_prompts')),
    sa.UniqueConstraint('suite_id', 'item_id', 'language', name='uq_prompts_suite_item_language')
    )
    op.create_table('samples',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('cache_key', sa.String(length=128), nullable=False),
    sa.Column('checkpoint_id', sa.String(length=200), nullable=False),
    sa.Column('adapters', sa.String(length=1000), nullable=False),
    sa.Column('suite_id', sa.Integer(), nullable=False),
    sa.Column('prompt_id', sa.Integer(), nullable=True),
    sa.Column('item_id', sa.String(length=200), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('prompt_text', sa.Text(), nullable=False),
    sa.Column('seed', sa.BigInteger(), nullable=False),
    sa.Column('settings_hash', sa.String(length=64), nullable=False),
    sa.Column('image_path', sa.String(length=1000), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['checkpoint_id'], ['checkpoints.id'], name=op.f('fk_samples_checkpoint_id_checkpoints')),
    sa.ForeignKeyConstraint(['prompt_id'], ['prompts.id'], name=op.f('fk_samples_prompt_id_prompts')),
    sa.ForeignKeyConstraint(['suite_id'], ['prompt_suites.id'], name=op.f('fk_samples_suite_id_prompt_suites')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_samples')),
    sa.UniqueConstraint('cache_key', name=op.f('uq_samples_cache_key'))
    )
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.create_index('ix_samples_checkpoint_suite', ['checkpoint_id', 'suite_id'], unique=False)

    op.create_table('votes',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('battle_id', sa.String(length=64), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('session_hash', sa.String(length=64), nullable=True),
    sa.Column('ip_hash', sa.String(length=64), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("outcome IN ('model_a', 'model_b', 'tie', 'tie (bothbad)')", name=op.f('ck_votes_outcome')),
    sa.ForeignKeyConstraint(['battle_id'], ['battles.id'], name=op.f('fk_votes_battle_id_battles')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_votes')),
    sa.UniqueConstraint('battle_id', name=op.f('uq_votes_battle_id'))
    )
    with op.batch_alter_table('votes', schema=None) as batch_op:
        batch_op.create_index('ix_votes_ip_created', ['ip_hash', 'created_at'], unique=False)
        batch_op.create_index('ix_votes_session_created', ['session_hash', 'created_at'], unique=False)

    op.create_table('scores',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('sample_id', sa.Integer(), nullable=False),
    sa.Column('judge_id', sa.String(length=200), nullable=False),
    sa.Column('metric', sa.String(length=64), nullable=False),
    sa.Column('value', sa.Float(), nullable=False),
    sa.ForeignKeyConstraint(['sample_id'], ['samples.id'], name=op.f('fk_scores_sample_id_samples')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scores')),
    sa.UniqueConstraint('sample_id', 'judge_id', 'metric', name='uq_scores_sample_judge_metric')
    )
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.create_index('ix_scores_metric', ['metric'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.drop_index('ix_scores_metric')

    op.drop_table('scores')
    with op.batch_alter_table('votes', schema=None) as batch_op:
        batch_op.drop_index('ix_votes_session_created')
        batch_op.drop_index('ix_votes_ip_created')

    op.drop_table('votes')
    with op.batch_alter_table('samples', schema=None) as batch_op:
        batch_op.drop_index('ix_samples_checkpoint_suite')

    op.drop_table('samples')
    op.drop_table('prompts')
    with op.batch_alter_table('eval_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_eval_runs_status_created')
        batch_op.drop_index(batch_op.f('ix_eval_runs_checkpoint_id'))

    op.drop_table('eval_runs')
    with op.batch_alter_table('battles', schema=None) as batch_op:
        batch_op.drop_index('ix_battles_session_created')
        batch_op.drop_index('ix_battles_model_b')
        batch_op.drop_index('ix_battles_model_a')
        batch_op.drop_index('ix_battles_ip_created')

    op.drop_table('battles')
    op.drop_table('prompt_suites')
    op.drop_table('checkpoints')
    op.drop_table('adapters')
