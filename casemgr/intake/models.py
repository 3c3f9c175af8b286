"""Inbound and outbound messages, attachments, and quarantined raw input."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, LargeBinary, Text
from sqlmodel import Field, SQLModel

from casemgr.clock import now


class Message(SQLModel, table=True):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_case", "case_id", "created_at"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int | None = Field(default=None, foreign_key="cases.id")
    direction: str = Field(default="inbound", max_length=10)  # inbound | outbound
    channel: str = Field(max_length=20)  # email | form | api | import | demo | agent
    # Message-ID is unique so a duplicate delivery (SMTP and IMAP, or a retry) is stored once.
    message_id: str | None = Field(default=None, max_length=998, unique=True)
    in_reply_to: str | None = Field(default=None, max_length=998)
    references: str | None = Field(default=None, sa_column=Column(Text))
    sender: str | None = Field(default=None, max_length=998)
    recipients: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, default=list))
    subject: str = Field(default="", max_length=998)
    sent_at: datetime | None = None
    body_text: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    raw: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    raw_sha256: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(default="stored", max_length=20)  # stored | sent | queued | failed
    meta: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict))
    created_at: datetime = Field(default_factory=now)


class Attachment(SQLModel, table=True):
    __tablename__ = "attachments"
    id: int | None = Field(default=None, primary_key=True)
    message_id: int = Field(foreign_key="messages.id", index=True)
    filename: str = Field(max_length=255)  # sanitised; never used as a path
    content_type: str = Field(default="application/octet-stream", max_length=255)
    size: int = 0
    sha256: str = Field(max_length=64, index=True)
    storage_path: str = Field(max_length=500)  # content-addressed under the data dir
    inline: bool = False
    # casemgr.intake.enums.AttachmentKind: S/MIME and PGP signature parts are kept but are not customer documents.
    kind: str = Field(default="document", max_length=20)
    created_at: datetime = Field(default_factory=now)


class QuarantinedMessage(SQLModel, table=True):
    __tablename__ = "quarantine"
    id: int | None = Field(default=None, primary_key=True)
    channel: str = Field(max_length=20)
    source: str | None = Field(default=None, max_length=500)  # file name, peer address, ...
    reason: str = Field(sa_column=Column(Text, nullable=False))
    raw: bytes | None = Field(default=None, sa_column=Column(LargeBinary))
    raw_sha256: str | None = Field(default=None, max_length=64, index=True)
    status: str = Field(default="held", max_length=20)  # held | reprocessed | discarded
    case_id: int | None = Field(default=None, foreign_key="cases.id")
    created_at: datetime = Field(default_factory=now, index=True)
    resolved_at: datetime | None = None
    resolved_by: str | None = Field(default=None, max_length=100)


class SpooledMessage(SQLModel, table=True):
    """A message `casemgr intake pipe` stored durably and acknowledged; the worker's intake.spool job turns it
    into a case (casemgr/intake/spool.py says why the pipe does not build the case itself)."""

    __tablename__ = "intake_spool"
    id: int | None = Field(default=None, primary_key=True)
    raw: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    source: str | None = Field(default=None, max_length=500)
    envelope_to: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False, default=list))
    received_at: datetime = Field(default_factory=now)
