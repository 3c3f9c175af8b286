"""ai_decisions double review (issue 21): a policy share of sampled decisions gets a second, blind verdict from a
different reviewer, so inter-reviewer agreement (percent agreement, Cohen's kappa) can be measured

Revision ID: 0017_decision_double_review
Revises: 0016_case_party_created
Create Date: 2026-12-03 17:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the full path, for mypy
from alembic import op

revision: str = '0017_decision_double_review'
down_revision: str | Sequence[str] | None = '0016_case_party_created'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('ai_decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('double_review', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column('second_verdict', sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column('second_reason_code', sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column('second_reviewed_by', sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column('second_reviewed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ai_decisions', schema=None) as batch_op:
        for name in ('second_reviewed_at', 'second_reviewed_by', 'second_reason_code', 'second_verdict',
                     'double_review'):
            batch_op.drop_column(name)
