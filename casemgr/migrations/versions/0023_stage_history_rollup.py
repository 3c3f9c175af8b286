"""stage_history.rolled_epoch and its partial index (issue 23): the dashboard rollups are kept incrementally, from
the visits finished since the last refresh, instead of re-reading every stage visit. The rollups are emptied here:
every finished visit is pending (epoch 0) and the next refresh counts each of them once, in short chunks.

Revision ID: 0023_stage_history_rollup
Revises: 0022_decision_second_index
Create Date: 2026-12-03 21:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0023_stage_history_rollup'
down_revision: str | Sequence[str] | None = '0022_decision_second_index'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN with a constant default: no table rebuild on SQLite, no rewrite on PostgreSQL 11+.
    op.add_column('stage_history', sa.Column('rolled_epoch', sa.Integer(), nullable=False, server_default=sa.text('0')))
    op.create_index('ix_stage_history_rollup', 'stage_history', ['rolled_epoch', 'id'], unique=False,
                    sqlite_where=sa.text('left_at IS NOT NULL'), postgresql_where=sa.text('left_at IS NOT NULL'))
    op.execute("DELETE FROM metric_stage_daily")
    op.execute("DELETE FROM metric_snapshots WHERE name = 'rollup_state'")


def downgrade() -> None:
    op.drop_index('ix_stage_history_rollup', table_name='stage_history')
    with op.batch_alter_table('stage_history', schema=None) as batch_op:
        batch_op.drop_column('rolled_epoch')
