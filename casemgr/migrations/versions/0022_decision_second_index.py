"""ai_decisions (double_review, second_verdict) index (issue 21): the review queue's second-opinion branch and the
agreement figures read the double-reviewed slice through it instead of scanning every reviewed decision

Revision ID: 0022_decision_second_index
Revises: 0021_resolution_code_index
Create Date: 2026-12-03 18:00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0022_decision_second_index'
down_revision: str | Sequence[str] | None = '0021_resolution_code_index'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index('ix_ai_decisions_second', 'ai_decisions', ['double_review', 'second_verdict'])


def downgrade() -> None:
    op.drop_index('ix_ai_decisions_second', table_name='ai_decisions')
