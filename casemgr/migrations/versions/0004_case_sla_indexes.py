"""cases: (type, stage, due) index for queue filters, (sla_state, due) index for SLA scans

Revision ID: 0004_case_sla_indexes
Revises: 0003_sla_metrics
Create Date: 2026-11-25 09:35:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0004_case_sla_indexes'
down_revision: str | Sequence[str] | None = '0003_sla_metrics'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_stage_type')
        batch_op.create_index('ix_cases_type_stage_due', ['case_type', 'stage', 'sla_due_at', 'id'], unique=False)
        batch_op.create_index('ix_cases_sla_state_due', ['sla_state', 'sla_due_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_sla_state_due')
        batch_op.drop_index('ix_cases_type_stage_due')
        batch_op.create_index('ix_cases_stage_type', ['case_type', 'stage'], unique=False)
