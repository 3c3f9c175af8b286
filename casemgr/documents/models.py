"""The policy_versions table: one row per published version of a document, exactly one active per kind."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from casemgr.clock import now


class PolicyVersion(SQLModel, table=True):
    """Published versions of governed documents; `kind` is a casemgr.documents.enums.DocumentKind."""

    __tablename__ = "policy_versions"
    __table_args__ = (Index("ix_policy_versions_kind", "kind", "created_at"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)
    name: str = Field(default="", max_length=200)  # e.g. rules file set name or policy file name
    version: str = Field(max_length=80)  # content hash
    content: str = Field(sa_column=Column(Text, nullable=False))
    files: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))  # for multi-file sets
    diff: str | None = Field(default=None, sa_column=Column(Text))
    author: str = Field(max_length=100)
    reason: str = Field(sa_column=Column(Text, nullable=False))
    is_active: bool = False
    created_at: datetime = Field(default_factory=now)


class ChangeRequest(SQLModel, table=True):
    """A drafted version of a governed document waiting for four eyes (casemgr.documents.changes).

    `files` is the complete candidate; `base_version` the version in force when it was drafted (an approval after
    someone else published is refused: the approver would sign off a diff that no longer holds)."""

    __tablename__ = "change_requests"
    __table_args__ = (Index("ix_change_requests_status", "status", "id"),)
    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=30)
    version: str = Field(max_length=80)  # content hash of the candidate
    base_version: str | None = Field(default=None, max_length=80)
    files: dict[str, Any] = Field(sa_column=Column(JSON, nullable=False))
    diff: str | None = Field(default=None, sa_column=Column(Text))
    reason: str = Field(sa_column=Column(Text, nullable=False))
    author: str = Field(max_length=120)  # actor string (user:NAME, apikey:NAME)
    author_user_id: int | None = None
    status: str = Field(default="pending", max_length=20)  # enums.ChangeStatus
    decided_by: str | None = Field(default=None, max_length=120)
    decided_by_user_id: int | None = None
    comment: str | None = Field(default=None, sa_column=Column(Text))
    decided_at: datetime | None = None
    published_version_id: int | None = None
    created_at: datetime = Field(default_factory=now)
