"""Pre-aggregated figures for the dashboard, refreshed by the worker (job `metrics.refresh`).

Stage visits are rolled up per exit day, case type, stage and a log-scale duration bucket: percentiles over
any period come from summing a few thousand rows, not sorting millions of stage_history rows.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Column
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
