"""customer look-ups read (party, created, id) from one covering index (issue 20 performance)

ix_cases_party (party_id) left SQLite's planner free to walk ix_cases_created backwards through the whole table
for "this customer's newest cases" whenever its statistics called party_id unselective (an ANALYZE taken
before customers had cases): 170 ms of CPU per case page at 100,000 cases. The covering index answers the
candidate look-up (ids and creation times of the customer's cases) without touching the table.

Revision ID: 0016_case_party_created
Revises: 0015_case_type_version
Create Date: 2026-12-03 17:00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0016_case_party_created'
down_revision: str | Sequence[str] | None = '0015_case_type_version'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_party_created', ['party_id', 'created_at', 'id'], unique=False)
        batch_op.drop_index('ix_cases_party')


def downgrade() -> None:
    with op.batch_alter_table('cases', schema=None) as batch_op:
        batch_op.create_index('ix_cases_party', ['party_id'], unique=False)
        batch_op.drop_index('ix_cases_party_created')
