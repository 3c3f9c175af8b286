"""Per-case SLA clock state the cases table does not carry: the paused remainder and the escalation episode."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from casemgr.clock import now


class SlaTimer(SQLModel, table=True):
    __tablename__ = "sla_timers"
    case_id: int = Field(foreign_key="cases.id", primary_key=True)
    # Pause (waiting on the customer): the business seconds left on the stage target when the clock stopped.
    paused_at: datetime | None = None
    paused_stage: str | None = Field(default=None, max_length=50)
    paused_remaining_s: float | None = None
    paused_total_s: float = 0.0
    # Escalation episode: the breach of the stage entered at `episode_stage_entered_at`.
    breached_at: datetime | None = None
    episode_stage_entered_at: datetime | None = None
    escalations: int = 0
    next_escalation_at: datetime | None = Field(default=None, index=True)
    escalation_task_id: int | None = None
    updated_at: datetime = Field(default_factory=now)
