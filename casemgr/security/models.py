"""Security events, aggregated: one row per kind, client, name and path per minute, with a count."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Column, Index, UniqueConstraint
from sqlmodel import Field, SQLModel

from casemgr.clock import now


class SecurityEvent(SQLModel, table=True):
    __tablename__ = "security_events"
    __table_args__ = (
        UniqueConstraint("minute", "kind", "client", "username", "path", name="uq_security_events_key"),
        Index("ix_security_events_last", "last_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    minute: int = Field(sa_column=Column(BigInteger, nullable=False))  # epoch seconds of the minute's start
    kind: str = Field(max_length=40)
    client: str = Field(max_length=64)  # the real client address (casemgr.web.clientaddr)
    username: str = Field(default="", max_length=100)  # as typed at login, or the principal; "" if none
    path: str = Field(default="", max_length=200)
    detail: str = Field(default="", max_length=300)
    count: int = 1
    first_at: datetime = Field(default_factory=now)
    last_at: datetime = Field(default_factory=now)
