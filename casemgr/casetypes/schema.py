"""Schema of policies/case-types.yaml and policies/org.yaml: case types are data, not code."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_RE = r"^[a-z][a-z0-9_-]*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RoleDef(Strict):
    name: str = Field(pattern=NAME_RE)
    description: str = ""


class QueueDef(Strict):
    name: str = Field(pattern=NAME_RE)
    owner_role: str
    description: str = ""


class Org(Strict):
    roles: list[RoleDef]
    queues: list[QueueDef]

    @property
    def role_names(self) -> set[str]:
        return {r.name for r in self.roles}

    @property
    def queue_names(self) -> set[str]:
        return {q.name for q in self.queues}


class FieldDef(Strict):
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    type: Literal["string", "text", "number", "integer", "date", "boolean", "enum"] = "string"
    required: bool = False
    choices: list[str] | None = None
    max_length: int | None = None
    label: str | None = None
    form: bool = True  # shown on the public form /submit/<slug>; false keeps an internal field off it


class TaskTemplate(Strict):
    name: str = Field(min_length=1, max_length=200)
    role: str | None = None
    sop: str | None = None
    due_hours: float | None = Field(default=None, gt=0)
    # handoff: the work passed to the next owner role; it stays open across stages, and the case cannot move
    # into a final stage while one is open (casemgr.cases.service.move_stage).
    kind: Literal["task", "approval", "handoff"] = "task"


class SlaDef(Strict):
    hours: float = Field(gt=0)
    business_hours: bool = True
    warn_at: float = Field(default=0.75, gt=0, lt=1)


class StageDef(Strict):
    name: str = Field(pattern=NAME_RE)
    label: str | None = None
    owner_role: str | None = None
    sla: SlaDef | None = None
    tasks: list[TaskTemplate] = Field(default_factory=list)
    transitions: list[str] = Field(default_factory=list)
    final: bool = False
    waits_on_customer: bool = False


class AICapabilities(Strict):
    """What the AI may work out for cases of this type (issue 17: capabilities belong to a case type).

    urgency: `text` reads it from the message (complaints), `contract_dates` derives it from extracted
    expiry and renewal-notice dates, `none` leaves urgency to people. A type that says nothing gets no
    AI urgency: a word like "attorney" in a contract is not an emergency.
    """

    classify: bool = True  # category, when the type has a `category` field with choices
    urgency: Literal["text", "contract_dates", "none"] = "none"
    intent: bool = False  # the complaint intent model (and next steps built on it)
    extract_contract: bool = False
    urgency_horizon_days: int = Field(default=30, ge=1, le=365)  # contract_dates: deadline within N days is high
    critical_within_days: int = Field(default=7, ge=0, le=365)  # ... within this many days is critical


class ResolutionCode(Strict):
    """An agent-confirmed root cause, chosen when a case of the type closes (issue 22: root causes)."""

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=50)
    label: str = Field(min_length=1, max_length=120)


class CaseTypeDef(Strict):
    name: str = Field(pattern=NAME_RE)
    label: str
    reference_prefix: str = Field(default="CASE", pattern=r"^[A-Z]{2,8}$")
    default_queue: str = "default"
    fields: list[FieldDef] = Field(default_factory=list)
    stages: list[StageDef] = Field(min_length=2)
    initial_stage: str | None = None
    ai: AICapabilities = Field(default_factory=AICapabilities)
    # Intake (issue 22: a type in YAML gets API, form and mail intake with no code change).
    slug: str | None = Field(default=None, pattern=NAME_RE)  # public form at /submit/<slug>; default: name
    form_title: str | None = None  # heading of the public form; default: the label
    public_form: bool = True
    intake_addresses: list[str] = Field(default_factory=list)  # "invoices@" (prefix) or a full address
    party_kind: str = Field(default="customer", pattern=NAME_RE)  # what the sender is: customer, counterparty…
    renewals: bool = False  # renewal reminders from contract dates (casemgr.sla.renewals)
    # Root causes (issue 22): when the list is not empty, a case of the type cannot enter a final stage without
    # one of these codes (casemgr.cases.resolution).
    resolution_codes: list[ResolutionCode] = Field(default_factory=list)

    @field_validator("stages")
    @classmethod
    def _unique_stage_names(cls, stages: list[StageDef]) -> list[StageDef]:
        seen: set[str] = set()
        for s in stages:
            if s.name in seen:
                raise ValueError(f"duplicate stage {s.name!r}")
            seen.add(s.name)
        return stages

    @field_validator("resolution_codes")
    @classmethod
    def _unique_codes(cls, codes: list[ResolutionCode]) -> list[ResolutionCode]:
        names = [c.name for c in codes]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"duplicate resolution code(s) {', '.join(dup)}")
        return codes

    def resolution_label(self, code: str | None) -> str | None:
        return next((c.label for c in self.resolution_codes if c.name == code), code)

    @property
    def form_slug(self) -> str:
        return self.slug or self.name

    @property
    def first_stage(self) -> str:
        return self.initial_stage or self.stages[0].name

    def stage(self, name: str) -> StageDef | None:
        for s in self.stages:
            if s.name == name:
                return s
        return None

    @property
    def stage_names(self) -> list[str]:
        return [s.name for s in self.stages]


class CaseTypesFile(Strict):
    case_types: list[CaseTypeDef] = Field(min_length=1)


def is_valid_name(value: str) -> bool:
    return re.match(NAME_RE, value) is not None
