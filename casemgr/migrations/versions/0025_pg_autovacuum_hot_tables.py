"""PostgreSQL autovacuum thresholds for the tables every queue page and refresh reads (issue 23).

With the default scale factors (20 % of the table), a 100k-case database needs ~20k dead case rows before
autovacuum runs: during the 100k soak it never ran, half of the cases pages were not all-visible, and the queue's
capped counts fell back from index-only scans to a sequential scan (2 ms -> 11 ms per page). 2 % keeps the
visibility map current under normal traffic; the insert threshold does the same for appended rows (stage_history).
SQLite has no autovacuum of this kind: nothing to do there.

Revision ID: 0025_pg_autovacuum_hot_tables
Revises: 0024_live_metric_counters
Create Date: 2026-12-04 06:00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0025_pg_autovacuum_hot_tables'
down_revision: str | Sequence[str] | None = '0024_live_metric_counters'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ('cases', 'stage_history')
SETTINGS = ('autovacuum_vacuum_scale_factor', 'autovacuum_vacuum_insert_scale_factor',
            'autovacuum_analyze_scale_factor')


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} SET ({', '.join(f'{s} = 0.02' for s in SETTINGS)})")


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} RESET ({', '.join(SETTINGS)})")
