"""cases.resolution_code (issue 22: root causes): the agent-confirmed cause chosen when a case closes, and an index
on (case_type, closed_at) for the root-cause figures of a period

Revision ID: 0018_resolution_code
Revises: 0017_decision_double_review
Create Date: 2026-12-03 17:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0018_resolution_code'
down_revision: str | Sequence[str] | None = '0017_decision_double_review'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('resolution_code', sa.String(length=50), nullable=True))
        batch_op.create_index('ix_cases_type_closed', ['case_type', 'closed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_type_closed')
        batch_op.drop_column('resolution_code')
