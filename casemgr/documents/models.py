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
