"""intake_spool: messages `casemgr intake pipe` acknowledged, waiting for the worker to make cases (issue 23)

Revision ID: 0019_intake_spool
Revises: 0018_resolution_code
Create Date: 2026-12-03 17:45:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the full path, for mypy
from alembic import op

revision: str = '0019_intake_spool'
down_revision: str | Sequence[str] | None = '0018_resolution_code'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'intake_spool',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('raw', sa.LargeBinary(), nullable=False),
        sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.Column('envelope_to', sa.JSON(), nullable=False),
        sa.Column('received_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )


def downgrade() -> None:
    op.drop_table('intake_spool')
