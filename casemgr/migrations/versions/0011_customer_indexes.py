"""customer look-ups (issue 20): cases by party, parties by lower-cased email

Revision ID: 0011_customer_indexes
Revises: 0010_change_requests
Create Date: 2026-12-03 15:05:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0011_customer_indexes'
down_revision: str | Sequence[str] | None = '0010_change_requests'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_party', ['party_id'], unique=False)
    # An expression index (SQLite >= 3.9 and PostgreSQL both have them): customers are found by email whatever
    # its case. Outside the models, like the full-text indexes (tests/test_migrations.py leaves it out).
    op.execute("CREATE INDEX ix_parties_email_lower ON parties (lower(email))")


def downgrade() -> None:
    op.execute("DROP INDEX ix_parties_email_lower")
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.drop_index('ix_cases_party')
