"""cases.case_type_version and tasks.sop_version (issue 22): a running case stays on the case-type version it
started with; a task records the SOP version it was done under

Revision ID: 0015_case_type_version
Revises: 0014_audit_chain_keyed
Create Date: 2026-12-03 17:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the full path: mypy then sees sqlmodel.sql.sqltypes.AutoString
from alembic import op

revision: str = '0015_case_type_version'
down_revision: str | Sequence[str] | None = '0014_audit_chain_keyed'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN (no table rebuild: the cases table carries full-text triggers).
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.add_column(sa.Column('case_type_version', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True))
        batch_op.create_index('ix_cases_type_version', ['case_type_version', 'case_type', 'id'], unique=False)
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sop_version', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('tasks', schema=None) as batch_op:
        batch_op.drop_column('sop_version')
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_type_version')
        batch_op.drop_column('case_type_version')
