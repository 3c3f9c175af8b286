"""change_requests (issue 21): four eyes on publishing the AI policy and the rules

Revision ID: 0010_change_requests
Revises: 0009_attachment_kind
Create Date: 2026-12-03 14:40:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the full path: mypy then sees sqlmodel.sql.sqltypes.UTCDateTime
from alembic import op

revision: str = '0010_change_requests'
down_revision: str | Sequence[str] | None = '0009_attachment_kind'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'change_requests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=30), nullable=False),
        sa.Column('version', sa.String(length=80), nullable=False),
        sa.Column('base_version', sa.String(length=80), nullable=True),
        sa.Column('files', sa.JSON(), nullable=False),
        sa.Column('diff', sa.Text(), nullable=True),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('author', sa.String(length=120), nullable=False),
        sa.Column('author_user_id', sa.Integer(), nullable=True),
        sa.Column('status', sa.String(length=20), nullable=False),
        sa.Column('decided_by', sa.String(length=120), nullable=True),
        sa.Column('decided_by_user_id', sa.Integer(), nullable=True),
        sa.Column('comment', sa.Text(), nullable=True),
        sa.Column('decided_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column('published_version_id', sa.Integer(), nullable=True),
        sa.Column('created_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_change_requests_status', 'change_requests', ['status', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_change_requests_status', table_name='change_requests')
    op.drop_table('change_requests')
