"""Pre-aggregated figures for the dashboard, refreshed by the worker (job `metrics.refresh`).

Stage visits are rolled up per exit day, case type, stage and a log-scale duration bucket: percentiles over
any period come from summing a few thousand rows, not sorting millions of stage_history rows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, text
from sqlmodel import Field, SQLModel

from casemgr.clock import now


class MetricStageDaily(SQLModel, table=True):
    __tablename__ = "metric_stage_daily"
    day: date = Field(primary_key=True)
    case_type: str = Field(primary_key=True, max_length=50)
    stage: str = Field(primary_key=True, max_length=50)
    bucket: int = Field(primary_key=True)
    n: int = 0
    seconds: float = 0.0
    with_sla: int = 0
    breached: int = 0


class MetricSnapshot(SQLModel, table=True):
    __tablename__ = "metric_snapshots"
    name: str = Field(primary_key=True, max_length=60)
    computed_at: datetime = Field(default_factory=now)
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict))


class MetricCounter(SQLModel, table=True):
    """Running totals behind the live figures (casemgr/metrics/live.py): one row per metric and key, folded from
    metric_deltas. `n` counts rows, `a`/`b` count flagged rows, `v` sums a value (see live.COUNTED)."""
    __tablename__ = "metric_counters"
    metric: str = Field(primary_key=True, max_length=20)
    k1: str = Field(default="", primary_key=True, max_length=80)
    k2: str = Field(default="", primary_key=True, max_length=80)
    k3: str = Field(default="", primary_key=True, max_length=80)
    n: int = 0
    a: int = 0
    b: int = 0
    v: float = 0.0


class MetricDelta(SQLModel, table=True):
    """One change of a counted row, written by the database's own triggers (migration 0024) in the transaction of
    the change, whatever code path made it; the refresh folds them into metric_counters and deletes them.
    AUTOINCREMENT on SQLite: an id is never reused, so "every delta up to id M" means the same set later."""
    __tablename__ = "metric_deltas"
    __table_args__ = {"sqlite_autoincrement": True}
    id: int | None = Field(default=None, primary_key=True)
    metric: str = Field(max_length=20)
    k1: str = Field(default="", max_length=80)
    k2: str = Field(default="", max_length=80)
    k3: str = Field(default="", max_length=80)
    n: int = 0
    a: int = 0
    b: int = 0
    v: float = 0.0


# Indexes on cases that the live figures read (declared here, next to their one reader, and attached to the cases
# table): the open backlog's aggregates come from a covering partial index over open cases, in group-by order, so
# their cost follows the open backlog, not the table; the longest-waiting list reads 20 entries of the second one.
from casemgr.cases.models import Case  # noqa: E402

_case = Case.__table__.c  # type: ignore[attr-defined]
OPEN_WHERE = "status = 'open'"
Index("ix_cases_open_backlog", _case.case_type, _case.stage, _case.queue, _case.stage_entered_at, _case.sla_state,
      _case.sla_due_at, sqlite_where=text(OPEN_WHERE), postgresql_where=text(OPEN_WHERE))
Index("ix_cases_open_entered", _case.stage_entered_at, _case.id,
      sqlite_where=text(f"{OPEN_WHERE} AND waiting_on_customer = 0"),
      postgresql_where=text(f"{OPEN_WHERE} AND waiting_on_customer = false"))
