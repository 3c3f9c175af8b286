"""AI decisions as they passed the policy choke point, and reviews of them.

Published policy versions (policy_versions) live in casemgr.documents.models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from casemgr.clock import now
from casemgr.documents.models import PolicyVersion  # noqa: F401 - moved to casemgr.documents; kept importable
from casemgr.governance.enums import ReviewStatus


class AIDecision(SQLModel, table=True):
    __tablename__ = "ai_decisions"
    __table_args__ = (
        Index("ix_ai_decisions_case", "case_id"),
        Index("ix_ai_decisions_review", "review_status", "created_at"),
        Index("ix_ai_decisions_second", "double_review", "second_verdict"),  # the double-reviewed slice
    )
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="cases.id")
    kind: str = Field(max_length=40)  # classify | set_priority | route_queue | assign | draft_reply | ...
    field: str | None = Field(default=None, max_length=60)  # case field it would set, if any
    proposed: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False, default=dict))
    previous: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    rationale: str | None = Field(default=None, sa_column=Column(Text))
    confidence: float | None = None
    outcome: str = Field(max_length=20)  # applied | suggested | rejected
    reason: str | None = Field(default=None, sa_column=Column(Text))
    owner_role: str | None = Field(default=None, max_length=50)
    policy_version: str = Field(max_length=80)
    model_version: str | None = Field(default=None, max_length=120)
    provider: str | None = Field(default=None, max_length=40)
    # pending (suggestion awaiting a human) | sampled (auto-applied, picked for review) | accepted |
    # overridden | rejected | none (nothing to review)
    review_status: str = Field(default=ReviewStatus.NONE, max_length=20)
    reviewed_by: str | None = Field(default=None, max_length=100)
    reviewed_at: datetime | None = None
    override_reason_code: str | None = Field(default=None, max_length=60)
    override_comment: str | None = Field(default=None, sa_column=Column(Text))
    override_value: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    # What decide() saw besides the output (case type, stage, category, allowed transitions): simulate and
    # replay re-run decide() on exactly this, so their counts agree.
    context: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON))
    run_id: str | None = Field(default=None, max_length=40)  # one enrichment run (or replay) of a case
    ai_call_id: int | None = None  # the ai_calls row that produced the output, when known
    sampled: bool = False  # picked for review by the policy's sample rate (applied decisions only)
    # The probability it was sampled with (base rate or its stratum's, issue 21): override rates weight 1/rate.
    sample_rate: float | None = None
    # Double review (issue 21): a policy share of sampled decisions also gets a second, blind verdict from a
    # different reviewer; it changes nothing on the case and measures inter-reviewer agreement (agreement.py).
    double_review: bool = False
    second_verdict: str | None = Field(default=None, max_length=20)  # accept | override
    second_reason_code: str | None = Field(default=None, max_length=60)
    second_reviewed_by: str | None = Field(default=None, max_length=100)
    second_reviewed_at: datetime | None = None
    # draft_reply: how much the agent changed the draft before sending it (casemgr.ai.drafting.distance; 0 = as
    # drafted, 1 = nothing kept); None until a reply is sent with the draft.
    edit_distance: float | None = None
    created_at: datetime = Field(default_factory=now, index=True)
