"""rate limit counters shared by every app process (public form, login failures per address)

Revision ID: 0007_rate_counters
Revises: 0006_audit_head_row
Create Date: 2026-11-25 15:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the full path: mypy then sees sqlmodel.sql.sqltypes.AutoString
from alembic import op

revision: str = '0007_rate_counters'
down_revision: str | Sequence[str] | None = '0006_audit_head_row'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'rate_counters',
        sa.Column('key', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column('window_start', sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column('count', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('key', 'window_start'),
    )


def downgrade() -> None:
    op.drop_table('rate_counters')
