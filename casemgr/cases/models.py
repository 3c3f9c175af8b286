"""Cases, parties, tasks, notes and stage history."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, text
from sqlmodel import Field, SQLModel

from casemgr.cases.enums import CaseStatus, TaskStatus
from casemgr.clock import now


class Party(SQLModel, table=True):
    """A customer (complaints) or counterparty (contracts)."""

    __tablename__ = "parties"
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(default="customer", max_length=20)  # customer | counterparty
    name: str | None = Field(default=None, max_length=300)
    email: str | None = Field(default=None, max_length=320, index=True)
    phone: str | None = Field(default=None, max_length=50)
    organisation: str | None = Field(default=None, max_length=300)
    tier: str = Field(default="standard", max_length=20)
    created_at: datetime = Field(default_factory=now)


class Case(SQLModel, table=True):
    __tablename__ = "cases"
    __table_args__ = (
        Index("ix_cases_queue_due", "queue", "sla_due_at", "id"),
        Index("ix_cases_assignee_due", "assignee_id", "sla_due_at", "id"),
        # (type, stage) filters of the queue page read in due order straight from the index (issue 8).
        Index("ix_cases_type_stage_due", "case_type", "stage", "sla_due_at", "id"),
        # SLA scans: open cases on track / at risk whose due time passed or nears.
        Index("ix_cases_sla_state_due", "sla_state", "sla_due_at"),
        Index("ix_cases_status_due", "status", "sla_due_at", "id"),
        Index("ix_cases_created", "created_at"),
        # Workspace views (issue 20): counts and pages of open cases by assignee / queue / waiting / recency
        # are read from these indexes alone, so they stay fast at 1M cases.
        Index("ix_cases_status_assignee_due", "status", "assignee_id", "sla_due_at", "id"),
        Index("ix_cases_status_queue_due", "status", "queue", "sla_due_at", "id"),
        Index("ix_cases_status_waiting_due", "status", "waiting_on_customer", "sla_due_at", "id"),
        Index("ix_cases_status_priority_due", "status", "priority", "sla_due_at", "id"),
        Index("ix_cases_status_updated", "status", "updated_at", "id"),
        # A customer's cases (customer panel, search by email) without a scan of the table. Covering (party,
        # created, id): the look-up reads its candidates from the index alone, whatever the planner's statistics.
        Index("ix_cases_party_created", "party_id", "created_at", "id"),
        # `casemgr casetypes migrate`: the cases pinned to one case-types version (issue 22).
        Index("ix_cases_type_version", "case_type_version", "case_type", "id"),
        # Root causes (issue 22): the coded closed cases of a type in a period; uncoded cases are never read.
        Index("ix_cases_type_code_closed", "case_type", "resolution_code", "closed_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    reference: str | None = Field(default=None, max_length=40, unique=True)
    case_type: str = Field(max_length=50)
    # The case-types version the case runs on (policy_versions.version, kind 'case-types'): a publish changes
    # new cases only (casemgr.casetypes.versions). None: opened before versions, follows the version in force.
    case_type_version: str | None = Field(default=None, max_length=80)
    stage: str = Field(max_length=50)
    status: str = Field(default=CaseStatus.OPEN, max_length=20)  # CaseStatus
    subject: str = Field(default="", max_length=500)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    priority: str = Field(default="normal", max_length=20)  # low | normal | high | urgent
    queue: str = Field(default="default", max_length=80)
    owner_role: str | None = Field(default=None, max_length=50)
    assignee_id: int | None = Field(default=None, foreign_key="users.id")
    party_id: int | None = Field(default=None, foreign_key="parties.id")
    channel: str = Field(default="api", max_length=20)  # email | form | api | import | demo

    # Facts the rules and AI work with; type-specific fields live in `fields`.
    category: str | None = Field(default=None, max_length=80)
    urgency: str | None = Field(default=None, max_length=20)
    sentiment: str | None = Field(default=None, max_length=20)
    amount: float | None = None
    customer_tier: str | None = Field(default=None, max_length=20)
    fields: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, default=list))

    # AI output that passed the policy choke point, and its status: pending | ok | unavailable | off
    ai_status: str = Field(default="pending", max_length=20)
    ai: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    contract: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))

    # Last routing decision with the ruleset version that made it (explainability).
    rules_result: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    ruleset_version: str | None = Field(default=None, max_length=80)

    # SLA: due time of the current stage target, and its state: none | on_track | at_risk | breached | paused
    sla_due_at: datetime | None = None
    sla_state: str = Field(default="none", max_length=20)
    sla_hours: float | None = None
    stage_entered_at: datetime = Field(default_factory=now)
    waiting_on_customer: bool = False

    version: int = Field(default=1)
    created_at: datetime = Field(default_factory=now)
    updated_at: datetime = Field(default_factory=now)
    closed_at: datetime | None = None
    # A duplicate merged into another case points at the survivor (bulk merge, issue 20).
    merged_into_id: int | None = None  # no FK: adding one would rebuild the cases table (and its FTS triggers)
    # The agent-confirmed root cause, one of the type's resolution_codes; required to close such a type (issue 22).
    resolution_code: str | None = Field(default=None, max_length=50)


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    name: str = Field(max_length=200)
    kind: str = Field(default="task", max_length=20)  # task | approval
    stage: str | None = Field(default=None, max_length=50)
    role: str | None = Field(default=None, max_length=50)
    sop: str | None = Field(default=None, max_length=300)
    source: str = Field(default="stage", max_length=20)  # stage | rule | user | sla
    status: str = Field(default=TaskStatus.OPEN, max_length=20)  # TaskStatus
    due_at: datetime | None = None
    created_at: datetime = Field(default_factory=now)
    completed_at: datetime | None = None
    completed_by: str | None = Field(default=None, max_length=100)
    # The SOP version (policy_versions.version, kind 'sop') in force when the task was done (issue 22).
    sop_version: str | None = Field(default=None, max_length=80)


class Note(SQLModel, table=True):
    __tablename__ = "notes"
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id", index=True)
    author: str = Field(max_length=100)
    body: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=now)


class StageHistory(SQLModel, table=True):
    __tablename__ = "stage_history"
    __table_args__ = (
        Index("ix_stage_history_case", "case_id", "entered_at"),
        # Finished visits not yet in the dashboard rollups of the current epoch (casemgr.metrics.rollup): the
        # refresh reads them through this index, so its cost follows the visits finished since the last run.
        Index("ix_stage_history_rollup", "rolled_epoch", "id", sqlite_where=text("left_at IS NOT NULL"),
              postgresql_where=text("left_at IS NOT NULL")),
    )
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id")
    case_type: str = Field(max_length=50)
    stage: str = Field(max_length=50)
    from_stage: str | None = Field(default=None, max_length=50)
    entered_at: datetime = Field(default_factory=now)
    left_at: datetime | None = None
    actor: str = Field(default="system", max_length=100)
    # The rollup epoch this finished visit was counted in (0: not yet); see casemgr/metrics/rollup.py.
    rolled_epoch: int = Field(default=0, sa_column_kwargs={"server_default": text("0")})
