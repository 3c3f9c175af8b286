"""audit: create the chain head row up front, so two first-ever audit events cannot race to insert it

Revision ID: 0006_audit_head_row
Revises: 0005_case_search
Create Date: 2026-11-25 10:55:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0006_audit_head_row'
down_revision: str | Sequence[str] | None = '0005_case_search'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

GENESIS = "0" * 64


def upgrade() -> None:
    op.execute(
        "INSERT INTO audit_head (id, seq, hash) SELECT 1, 0, '" + GENESIS + "' "
        "WHERE NOT EXISTS (SELECT 1 FROM audit_head WHERE id = 1)"
    )


def downgrade() -> None:
    # The row is data of the chain once events exist; only an untouched genesis row is removed.
    op.execute("DELETE FROM audit_head WHERE id = 1 AND seq = 0")
