"""sla timers and dashboard rollups

Revision ID: 0003_sla_metrics
Revises: 0002_governance
Create Date: 2026-11-25 09:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the full path: mypy then sees sqlmodel.sql.sqltypes.AutoString
from alembic import op

revision: str = '0003_sla_metrics'
down_revision: str | Sequence[str] | None = '0002_governance'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'sla_timers',
        sa.Column('case_id', sa.Integer(), nullable=False),
        sa.Column('paused_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('paused_stage', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=True),
        sa.Column('paused_remaining_s', sa.Float(), nullable=True),
        sa.Column('paused_total_s', sa.Float(), nullable=False),
        sa.Column('breached_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('episode_stage_entered_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('escalations', sa.Integer(), nullable=False),
        sa.Column('next_escalation_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('escalation_task_id', sa.Integer(), nullable=True),
        sa.Column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['case_id'], ['cases.id']),
        sa.PrimaryKeyConstraint('case_id'),
    )
    with op.batch_alter_table('sla_timers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sla_timers_next_escalation_at'), ['next_escalation_at'], unique=False)
    op.create_table(
        'metric_stage_daily',
        sa.Column('day', sa.Date(), nullable=False),
        sa.Column('case_type', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column('stage', sqlmodel.sql.sqltypes.AutoString(length=50), nullable=False),
        sa.Column('bucket', sa.Integer(), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('seconds', sa.Float(), nullable=False),
        sa.Column('with_sla', sa.Integer(), nullable=False),
        sa.Column('breached', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('day', 'case_type', 'stage', 'bucket'),
    )
    op.create_table(
        'metric_snapshots',
        sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
        sa.Column('computed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column('data', sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint('name'),
    )


def downgrade() -> None:
    op.drop_table('metric_snapshots')
    op.drop_table('metric_stage_daily')
    with op.batch_alter_table('sla_timers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sla_timers_next_escalation_at'))
    op.drop_table('sla_timers')
