"""Users, their roles, API keys and server-side web sessions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from casemgr.clock import now


class User(SQLModel, table=True):
    __tablename__ = "users"
    id: int | None = Field(default=None, primary_key=True)
    username: str = Field(max_length=100, unique=True)
    display_name: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    password_hash: str | None = Field(default=None, max_length=300)
    active: bool = True
    failed_logins: int = 0
    locked_until: datetime | None = None
    created_at: datetime = Field(default_factory=now)
    # IANA zone the workspace shows times in (profile setting); None = UTC.
    time_zone: str | None = Field(default=None, max_length=64)


class UserRole(SQLModel, table=True):
    __tablename__ = "user_roles"
    __table_args__ = (UniqueConstraint("user_id", "role"),)
    id: int | None = Field(default=None, primary_key=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    role: str = Field(max_length=50)


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=16, index=True)
    key_hash: str = Field(max_length=128, unique=True)
    user_id: int | None = Field(default=None, foreign_key="users.id")
    scopes: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, default=list))
    created_at: datetime = Field(default_factory=now)
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


class WebSession(SQLModel, table=True):
    __tablename__ = "web_sessions"
    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(max_length=128, unique=True)
    user_id: int = Field(foreign_key="users.id", index=True)
    csrf_token: str = Field(max_length=128)
    created_at: datetime = Field(default_factory=now)
    expires_at: datetime
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict))
