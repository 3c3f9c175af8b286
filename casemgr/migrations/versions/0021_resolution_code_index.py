"""cases: the root-cause index leads with the resolution code, (case_type, resolution_code, closed_at), so the
root-cause figures read only closed cases that carry a code (a database of uncoded cases costs nothing; issue 22)

Revision ID: 0021_resolution_code_index
Revises: 0020_decision_edit_distance
Create Date: 2026-12-03 17:55:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0021_resolution_code_index'
down_revision: str | Sequence[str] | None = '0020_decision_edit_distance'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_type_closed')
        batch_op.create_index('ix_cases_type_code_closed', ['case_type', 'resolution_code', 'closed_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_type_code_closed')
        batch_op.create_index('ix_cases_type_closed', ['case_type', 'closed_at'], unique=False)
