"""attachments.kind (issue 19): S/MIME and PGP signature parts are kept but marked as signatures

Revision ID: 0009_attachment_kind
Revises: 0008_workspace
Create Date: 2026-12-03 14:20:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009_attachment_kind'
down_revision: str | Sequence[str] | None = '0008_workspace'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('kind', sa.String(length=20), nullable=False, server_default='document'))


def downgrade() -> None:
    with op.batch_alter_table('attachments', schema=None) as batch_op:
        batch_op.drop_column('kind')
