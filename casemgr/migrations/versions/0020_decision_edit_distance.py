"""ai_decisions.edit_distance (issues 17 and 20): how much the agent changed an AI reply draft before sending
it (normalised word edit distance, 0 = sent as drafted, 1 = nothing kept), so reviewers see it per decision

Revision ID: 0020_decision_edit_distance
Revises: 0019_intake_spool
Create Date: 2026-12-03 17:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0020_decision_edit_distance'
down_revision: str | Sequence[str] | None = '0019_intake_spool'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('ai_decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('edit_distance', sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ai_decisions', schema=None) as batch_op:
        batch_op.drop_column('edit_distance')
