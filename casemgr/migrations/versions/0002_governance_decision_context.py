"""governance: decision context, run id, ai call link, sampled flag

Revision ID: 0002_governance
Revises: 0001_initial
Create Date: 2026-11-25 09:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the full path: mypy then sees sqlmodel.sql.sqltypes.AutoString
from alembic import op

revision: str = '0002_governance'
down_revision: str | Sequence[str] | None = '0001_initial'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('ai_decisions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('context', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('run_id', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=True))
        batch_op.add_column(sa.Column('ai_call_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('sampled', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table('ai_decisions', schema=None) as batch_op:
        batch_op.drop_column('sampled')
        batch_op.drop_column('ai_call_id')
        batch_op.drop_column('run_id')
        batch_op.drop_column('context')
