"""Shapes of POST /api/cases/bulk."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from casemgr.bulk.enums import BulkAction, Outcome

MAX_BULK = 500


class CaseRef(BaseModel):
    id: int = Field(ge=1)
    version: int = Field(ge=1, description="The version you read; a case changed since gets `conflict`")


class BulkIn(BaseModel):
    action: BulkAction
    params: dict[str, Any] = Field(default_factory=dict)
    cases: list[CaseRef] = Field(min_length=1, max_length=MAX_BULK)


class BulkResult(BaseModel):
    id: int
    result: Outcome
    message: str
    version: int | None = Field(default=None, description="The case's version after the change (ok)")


class BulkOut(BaseModel):
    action: BulkAction
    results: list[BulkResult]
    summary: str = Field(description='e.g. "18 changed, 2 skipped: changed by someone else"')
