"""Durable background jobs. A job is claimed with a lease; a worker killed mid-job lets the lease expire."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from casemgr.clock import now


class Job(SQLModel, table=True):
    __tablename__ = "jobs"
    __table_args__ = (Index("ix_jobs_due", "status", "run_at", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=60)  # ai.enrich | sla.check | mail.send | renewal.check | ...
    payload: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict))
    # Same key enqueued twice is one job: jobs are idempotent at the queue level too.
    idempotency_key: str | None = Field(default=None, max_length=200, unique=True)
    status: str = Field(default="queued", max_length=20)  # queued | running | done | failed | dead
    run_at: datetime = Field(default_factory=now)
    attempts: int = 0
    max_attempts: int = 8
    locked_by: str | None = Field(default=None, max_length=100)
    locked_until: datetime | None = None
    last_error: str | None = Field(default=None, sa_column=Column(Text))
    created_at: datetime = Field(default_factory=now)
    finished_at: datetime | None = None
