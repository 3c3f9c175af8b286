"""Append-only, hash-chained audit events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from casemgr.clock import now


class AuditEvent(SQLModel, table=True):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_case", "case_id", "seq"),)

    # seq is the chain position; it is assigned under the chain-head lock, so it has no gaps.
    seq: int = Field(primary_key=True, sa_column_kwargs={"autoincrement": False})
    ts: datetime = Field(default_factory=now, index=True)
    actor: str = Field(max_length=120)  # user:NAME | apikey:NAME | system | ai:MODEL | worker
    action: str = Field(max_length=80, index=True)
    case_id: int | None = Field(default=None)
    entity: str | None = Field(default=None, max_length=80)
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64)


class AuditHead(SQLModel, table=True):
    """One row: the last seq and hash. Locking it serialises the chain; it also reveals a deleted tail."""

    __tablename__ = "audit_head"
    id: int = Field(default=1, primary_key=True)
    seq: int = 0
    hash: str = Field(default="0" * 64, max_length=64)
