"""API shapes for cases (the table shape differs: these are what clients send and receive)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from casemgr.cases.enums import Priority, Urgency

LINE_BREAKS = "\r\n\v\f\x1c\x1d\x1e\x85\u2028\u2029"  # what str.splitlines() splits on


class PartyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(default=None, max_length=300)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=50)
    organisation: str | None = Field(default=None, max_length=300)
    tier: Literal["standard", "gold", "platinum"] = "standard"


class CaseCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case_type: str = Field(max_length=50, description="A case type from policies/case-types.yaml")
    subject: str = Field(min_length=1, max_length=500)
    description: str = Field(default="", max_length=100_000)
    priority: Priority = Priority.NORMAL
    channel: Literal["email", "form", "api", "import", "demo"] = "api"
    party: PartyIn | None = None
    category: str | None = Field(default=None, max_length=80)
    amount: float | None = Field(default=None, ge=0, le=1e12)
    customer_tier: Literal["standard", "gold", "platinum"] | None = None
    fields: dict[str, Any] = Field(default_factory=dict)


class CasePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, description="The version you read; a stale version gets 409")
    subject: str | None = Field(default=None, min_length=1, max_length=500)
    priority: Priority | None = None
    category: str | None = Field(default=None, max_length=80, description="One of the case type's category choices")
    urgency: Urgency | None = None
    amount: float | None = Field(default=None, ge=0, le=1e12)
    fields: dict[str, Any] | None = None
    waiting_on_customer: bool | None = None

    @field_validator("subject")
    @classmethod
    def _single_line(cls, v: str | None) -> str | None:
        # A subject ends up in mail headers and one-line UI: a line break in it is never meant (issue 18).
        if v is not None and any(ch in v for ch in LINE_BREAKS):
            raise ValueError("the subject must be a single line (no CR, LF or other line break)")
        return v


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to_stage: str = Field(min_length=1, max_length=50)
    version: int = Field(ge=1)
    reason: str | None = Field(default=None, max_length=2000)
    resolution_code: str | None = Field(default=None, max_length=50, description=(
        "The confirmed root cause, one of the case type's resolution_codes; required to close a type that has them"))


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    assignee: str | None = Field(default=None, max_length=100, description="username, or null to unassign")
    version: int = Field(ge=1)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=20_000)
    version: int | None = Field(default=None, ge=1)


class TaskIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: str | None = Field(default=None, max_length=50)
    sop: str | None = Field(default=None, max_length=300)
    kind: Literal["task", "approval"] = "task"
    due_at: datetime | None = None
    version: int | None = Field(default=None, ge=1)


class TaskCompleteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int | None = Field(default=None, ge=1)


class TaskOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    case_id: int
    name: str
    kind: str
    stage: str | None
    role: str | None
    sop: str | None
    source: str
    status: str
    due_at: datetime | None
    created_at: datetime
    completed_at: datetime | None
    completed_by: str | None


class NoteOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    case_id: int
    author: str
    body: str
    created_at: datetime


class CaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    reference: str | None
    case_type: str
    stage: str
    status: str
    subject: str
    description: str
    priority: str
    queue: str
    owner_role: str | None
    assignee_id: int | None
    party_id: int | None
    channel: str
    category: str | None
    urgency: str | None
    sentiment: str | None
    amount: float | None
    customer_tier: str | None
    fields: dict[str, Any]
    tags: list[str]
    ai_status: str
    ai: dict[str, Any] | None
    contract: dict[str, Any] | None
    rules_result: dict[str, Any] | None
    ruleset_version: str | None
    sla_due_at: datetime | None
    sla_state: str
    stage_entered_at: datetime
    waiting_on_customer: bool
    version: int
    created_at: datetime
    updated_at: datetime
    closed_at: datetime | None
    resolution_code: str | None = None


class CasePage(BaseModel):
    items: list[CaseOut]
    next_cursor: str | None = Field(description="Pass as ?cursor= to get the next page; null at the end")


class CaseFilters(BaseModel):
    case_type: str | None = None
    stage: str | None = None
    queue: str | None = None
    assignee: str | None = None
    priority: str | None = None
    status: str | None = None
    category: str | None = None
    sla_state: str | None = None
    text: str | None = None


