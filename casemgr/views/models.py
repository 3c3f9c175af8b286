"""Saved queue views: a name, the queue filters and a sort; personal (owner_id set) or shared (owner_id None)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from casemgr.clock import now


class SavedView(SQLModel, table=True):
    __tablename__ = "saved_views"
    __table_args__ = (Index("ix_saved_views_owner", "owner_id", "name"),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=80)
    owner_id: int | None = Field(default=None, foreign_key="users.id")  # None: shared with everyone
    filters: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict))
    sort: str = Field(default="sla", max_length=20)
    created_by: str = Field(max_length=100)
    created_at: datetime = Field(default_factory=now)
