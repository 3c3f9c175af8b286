"""The shape of one macro file (policies/macros/NAME.yaml)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from casemgr.policyfile import problem


class MacroTask(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    role: str | None = Field(default=None, max_length=50)
    due_hours: float | None = Field(default=None, gt=0, le=24 * 365)


class MacroSet(BaseModel):
    """Case changes a macro makes (each optional)."""

    model_config = ConfigDict(extra="forbid")
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    urgency: Literal["low", "normal", "high", "critical"] | None = None
    queue: str | None = Field(default=None, max_length=80)
    waiting_on_customer: bool | None = None
    fields: dict[str, Any] = Field(default_factory=dict)


class Macro(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,79}$")
    title: str = Field(min_length=1, max_length=120)
    description: str = Field(default="", max_length=1000)
    case_types: list[str] = Field(min_length=1)
    stages: list[str] = Field(default_factory=list, description="stages it applies in; empty = any open stage")
    reply: str = Field(default="", max_length=20_000)
    set: MacroSet = Field(default_factory=MacroSet)
    tasks: list[MacroTask] = Field(default_factory=list, max_length=20)
    transition: str | None = Field(default=None, max_length=50)
    # A macro that closes a type with resolution codes names the root cause it confirms (issue 22).
    resolution_code: str | None = Field(default=None, max_length=50)

    @field_validator("case_types")
    @classmethod
    def _known_types(cls, v: list[str]) -> list[str]:
        from casemgr.casetypes.registry import get_registry

        known = set(get_registry().case_types)
        bad = [t for t in v if t not in known]
        if bad:
            raise problem(f"unknown case type(s) {', '.join(bad)}; known: {', '.join(sorted(known))}")
        return v
