"""Every AI call is recorded: provider, model, versions, input hash, output, confidence, latency, error."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from casemgr.clock import now


class AICall(SQLModel, table=True):
    __tablename__ = "ai_calls"
    __table_args__ = (Index("ix_ai_calls_case", "case_id", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="cases.id")
    capability: str = Field(max_length=40)  # classify | summarize | suggest | extract_contract
    provider: str = Field(max_length=40)
    model: str | None = Field(default=None, max_length=200)
    model_version: str | None = Field(default=None, max_length=100)
    prompt_version: str | None = Field(default=None, max_length=100)
    input_hash: str = Field(max_length=64)
    output: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    confidence: float | None = None
    latency_ms: float = 0.0
    error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=now, index=True)
