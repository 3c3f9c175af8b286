"""Counters for the dashboard's live figures (issue 23): metric_counters, metric_deltas, the triggers that write a
delta row for every change of a counted row, and two partial indexes on open cases.

The live figures (casemgr/metrics/live.py) were full-table aggregates, ~12 s of CPU per refresh at 1M cases. Each
counted table now gets AFTER INSERT / UPDATE OF … / DELETE triggers that insert (metric, keys, ±n, ±a, ±b, ±v) into
metric_deltas in the transaction of the change, whichever code path makes it (ORM, batch inserts, raw SQL). A
refresh folds the deltas into metric_counters; a reader adds the counters and the deltas not yet folded. Deltas are
insert-only (no hot counter row for concurrent writers to queue on, no lock order to deadlock on PostgreSQL).
The counters start empty and uninitialised: the first refresh (or `casemgr metrics refresh --full`) counts the
tables once and from then on only the deltas are read. What each metric counts must stay what
casemgr.metrics.live.full_counter_rows() counts (tests/metrics/test_live_counters.py compares them).

Revision ID: 0024_live_metric_counters
Revises: 0023_stage_history_rollup
Create Date: 2026-12-04 00:45:00
"""
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
import sqlmodel.sql.sqltypes  # the full path, for mypy
from alembic import op

revision: str = '0024_live_metric_counters'
down_revision: str | Sequence[str] | None = '0023_stage_history_rollup'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LATENCY_BUCKETS_MS = (10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)  # = metrics.service.AI_LATENCY_BUCKETS_MS


def _bucket(r: str) -> str:
    whens = " ".join(f"WHEN {r}.latency_ms <= {b} THEN '{i}'" for i, b in enumerate(LATENCY_BUCKETS_MS))
    return f"CASE {whens} ELSE '{len(LATENCY_BUCKETS_MS)}' END"


def _flag(cond: str) -> str:
    return f"CASE WHEN {cond} THEN 1 ELSE 0 END"


def _default_used(dialect: str, r: str) -> str:
    # The same test as metrics.service._json_true on each dialect (a JSON true; SQLite's json_extract gives 1).
    if dialect == "sqlite":
        return _flag(f"(CASE WHEN json_valid({r}.rules_result) THEN json_extract({r}.rules_result, "
                     f"'$.default_used') = 1 END)")
    return _flag(f"({r}.rules_result ->> 'default_used') = 'true'")


def specs(dialect: str) -> list[dict[str, Any]]:
    """Per counted table: metric name, the columns whose UPDATE can change what it counts, the row's keys and
    values as SQL over a row alias `r` (NEW or OLD), and the condition for the row to be counted at all."""
    return [
        {"table": "cases", "metric": "cases", "cols": ("case_type", "ai_status", "rules_result"),
         "k1": lambda r: f"{r}.case_type", "a": lambda r: _flag(f"{r}.ai_status = 'unavailable'"),
         "b": lambda r: _default_used(dialect, r)},
        {"table": "stage_history", "metric": "visits", "cols": ("case_type",), "k1": lambda r: f"{r}.case_type"},
        {"table": "ai_decisions", "metric": "decisions", "cols": ("kind", "outcome", "review_status"),
         "k1": lambda r: f"{r}.kind", "k2": lambda r: f"{r}.outcome", "k3": lambda r: f"{r}.review_status"},
        {"table": "ai_calls", "metric": "calls", "cols": ("capability", "provider", "latency_ms", "error"),
         "k1": lambda r: f"{r}.capability", "k2": lambda r: f"{r}.provider", "k3": _bucket,
         "a": lambda r: _flag(f"{r}.error IS NOT NULL"), "v": lambda r: f"{r}.latency_ms"},
        {"table": "audit_events", "metric": "breaches", "cols": ("action",),
         "when": lambda r: f"{r}.action = 'sla.breached'"},
        {"table": "quarantine", "metric": "quarantine", "cols": ("status",), "k1": lambda r: f"{r}.status"},
        {"table": "messages", "metric": "outbound", "cols": ("direction", "status"), "k1": lambda r: f"{r}.status",
         "when": lambda r: f"{r}.direction = 'outbound' AND {r}.status IN ('failed', 'outbox')"},
    ]


def _values(spec: dict[str, Any], r: str, sign: int) -> str:
    def part(name: str, default: str) -> str:
        f = spec.get(name)
        return f(r) if callable(f) else default

    keys = [f"COALESCE({part(k, chr(39) * 2)}, '')" for k in ("k1", "k2", "k3")]
    nums = [str(sign), f"{sign} * ({part('a', '0')})", f"{sign} * ({part('b', '0')})",
            f"{sign} * COALESCE({part('v', '0')}, 0)"]
    return f"'{spec['metric']}', " + ", ".join(keys + nums)


def _changed(spec: dict[str, Any], distinct: str) -> str:
    """An UPDATE changed what the row counts as: any key, value or the condition differs."""
    fs = [f for k in ("k1", "k2", "k3", "a", "b", "v", "when") if callable(f := spec.get(k))]
    return " OR ".join(f"(({f('OLD')}) {distinct} ({f('NEW')}))" for f in fs)


INSERT = "INSERT INTO metric_deltas (metric, k1, k2, k3, n, a, b, v)"


def _sqlite(spec: dict[str, Any]) -> list[str]:
    t, name = spec["table"], f"metric_{spec['table']}"
    when = spec.get("when")
    w_new = f" WHEN {when('NEW')}" if callable(when) else ""
    w_old = f" WHEN {when('OLD')}" if callable(when) else ""
    only_old = f" WHERE {when('OLD')}" if callable(when) else ""
    only_new = f" WHERE {when('NEW')}" if callable(when) else ""
    cols = ", ".join(spec["cols"])
    return [
        f"CREATE TRIGGER {name}_ai AFTER INSERT ON {t}{w_new} BEGIN {INSERT} VALUES ({_values(spec, 'NEW', 1)}); END",
        f"CREATE TRIGGER {name}_ad AFTER DELETE ON {t}{w_old} BEGIN {INSERT} VALUES ({_values(spec, 'OLD', -1)}); END",
        f"CREATE TRIGGER {name}_au AFTER UPDATE OF {cols} ON {t} WHEN {_changed(spec, 'IS NOT')} BEGIN "
        f"{INSERT} SELECT {_values(spec, 'OLD', -1)}{only_old}; "
        f"{INSERT} SELECT {_values(spec, 'NEW', 1)}{only_new}; END",
    ]


def _postgresql(spec: dict[str, Any]) -> list[str]:
    t, name = spec["table"], f"metric_{spec['table']}"
    when = spec.get("when")
    c_old = when("OLD") if callable(when) else "true"
    c_new = when("NEW") if callable(when) else "true"
    cols = ", ".join(spec["cols"])
    return [
        f"""CREATE FUNCTION {name}_delta() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP <> 'INSERT' THEN
    IF {c_old} THEN {INSERT} VALUES ({_values(spec, 'OLD', -1)}); END IF;
  END IF;
  IF TG_OP <> 'DELETE' THEN
    IF {c_new} THEN {INSERT} VALUES ({_values(spec, 'NEW', 1)}); END IF;
  END IF;
  RETURN NULL;
END $$""",
        f"CREATE TRIGGER {name}_ai AFTER INSERT ON {t} FOR EACH ROW WHEN ({c_new}) EXECUTE FUNCTION {name}_delta()",
        f"CREATE TRIGGER {name}_ad AFTER DELETE ON {t} FOR EACH ROW WHEN ({c_old}) EXECUTE FUNCTION {name}_delta()",
        f"CREATE TRIGGER {name}_au AFTER UPDATE OF {cols} ON {t} FOR EACH ROW "
        f"WHEN ({_changed(spec, 'IS DISTINCT FROM')}) EXECUTE FUNCTION {name}_delta()",
    ]


def upgrade() -> None:
    op.create_table(
        'metric_counters',
        sa.Column('metric', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('k1', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column('k2', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column('k3', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('a', sa.Integer(), nullable=False),
        sa.Column('b', sa.Integer(), nullable=False),
        sa.Column('v', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('metric', 'k1', 'k2', 'k3'),
    )
    op.create_table(
        'metric_deltas',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('metric', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
        sa.Column('k1', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column('k2', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column('k3', sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.Column('a', sa.Integer(), nullable=False),
        sa.Column('b', sa.Integer(), nullable=False),
        sa.Column('v', sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sqlite_autoincrement=True,
    )
    open_ = sa.text("status = 'open'")
    op.create_index('ix_cases_open_backlog', 'cases',
                    ['case_type', 'stage', 'queue', 'stage_entered_at', 'sla_state', 'sla_due_at'],
                    sqlite_where=open_, postgresql_where=open_)
    op.create_index('ix_cases_open_entered', 'cases', ['stage_entered_at', 'id'],
                    sqlite_where=sa.text("status = 'open' AND waiting_on_customer = 0"),
                    postgresql_where=sa.text("status = 'open' AND waiting_on_customer = false"))
    dialect = op.get_bind().dialect.name
    for spec in specs(dialect):
        for stmt in (_sqlite(spec) if dialect == "sqlite" else _postgresql(spec)):
            op.execute(stmt)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    for spec in specs(dialect):
        name = f"metric_{spec['table']}"
        for suffix in ("ai", "ad", "au"):
            op.execute(f"DROP TRIGGER IF EXISTS {name}_{suffix}" + ("" if dialect == "sqlite" else f" ON {spec['table']}"))
        if dialect != "sqlite":
            op.execute(f"DROP FUNCTION IF EXISTS {name}_delta()")
    op.drop_index('ix_cases_open_entered', table_name='cases')
    op.drop_index('ix_cases_open_backlog', table_name='cases')
    op.drop_table('metric_deltas')
    op.drop_table('metric_counters')
    op.execute("DELETE FROM metric_snapshots WHERE name = 'live_state'")
