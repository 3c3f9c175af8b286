"""One notification for one user; read_at None = unread."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from casemgr.clock import now


class Notification(SQLModel, table=True):
    __tablename__ = "notifications"
    # The bell counts a user's unread rows straight from this index.
    __table_args__ = (Index("ix_notifications_user_read", "user_id", "read_at", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id")
    kind: str = Field(max_length=30)  # NotificationKind
    case_id: int | None = Field(default=None, foreign_key="cases.id")
    actor: str = Field(default="system", max_length=100)
    text: str = Field(max_length=500)
    created_at: datetime = Field(default_factory=now)
    read_at: datetime | None = None
