"""ai_decisions.sample_rate (issue 21): the probability an applied decision was sampled for review (stratified
sampling), so override rates can be weighted back (1/rate) and stay unbiased

Revision ID: 0012_decision_sample_rate
Revises: 0011_customer_indexes
Create Date: 2026-12-03 15:05:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012_decision_sample_rate'
down_revision: str | Sequence[str] | None = '0011_customer_indexes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('ai_decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sample_rate', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ai_decisions', schema=None) as batch_op:
        batch_op.drop_column('sample_rate')
