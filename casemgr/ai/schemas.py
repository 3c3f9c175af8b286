"""The structured outputs every provider must return. External answers are validated against these."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

CLAUSES: tuple[str, ...] = (
    "Cap On Liability",
    "Uncapped Liability",
    "Non-Compete",
    "Exclusivity",
    "Change Of Control",
    "Anti-Assignment",
    "Termination For Convenience",
    "Renewal Term",
)

Urgency = Literal["low", "normal", "high", "critical"]
Sentiment = Literal["negative", "neutral", "positive"]


class _Strict(BaseModel):
    # Unknown keys from a model's answer are an error, not silently carried along.
    model_config = ConfigDict(extra="forbid")


class Scored(_Strict):
    label: str = Field(max_length=100)
    confidence: float = Field(ge=0.0, le=1.0)
    # Why: the cue words and the sentence that carried the label, shown to agents and reviewers.
    evidence: list[str] = Field(default_factory=list, max_length=8)


class Scope(_Strict):
    """Whether the complaint models should be trusted on this text at all (casemgr.ai.scope)."""

    language: str = Field(default="en", max_length=20)
    spam: bool = False
    phishing: bool = False
    out_of_scope: bool = False
    needs_human: bool = False
    reason: str | None = Field(default=None, max_length=100)
    evidence: list[str] = Field(default_factory=list, max_length=8)


class Classification(_Strict):
    category: Scored
    urgency: Scored
    sentiment: Scored
    scores: dict[str, float] = Field(default_factory=dict)  # per-category probabilities when known
    intent: Scored | None = None  # the single main thing the person wants (casemgr.ai.targets.INTENTS)
    scope: Scope | None = None


class KeyFacts(_Strict):
    amounts: list[str] = Field(default_factory=list)
    dates: list[str] = Field(default_factory=list)
    ids: list[str] = Field(default_factory=list)
    parties: list[str] = Field(default_factory=list)
    emails: list[str] = Field(default_factory=list)


class Summary(_Strict):
    summary: str = Field(max_length=2000)
    sentences: list[str] = Field(default_factory=list, max_length=3)
    key_facts: KeyFacts = Field(default_factory=KeyFacts)


class Suggestion(_Strict):
    action: str | None = Field(default=None, max_length=100)
    rationale: str = Field(default="", max_length=1000)
    confidence: float = Field(default=0.0, ge=0.0, le=1.0)


class MacroText(_Strict):
    """A macro of the case's type as a drafting source: its name, title, stages and reply template."""

    name: str = Field(max_length=80)
    title: str = Field(default="", max_length=120)
    stages: list[str] = Field(default_factory=list)
    reply: str = Field(default="", max_length=20_000)


class DraftContext(_Strict):
    """What a reply draft may use: the case facts read before any model runs, and the AI's own findings.

    Built by governance.enrich.prepare (case, customer, macros, SOPs) and completed in call_models (intent,
    amounts and dates, next steps); providers never read the database."""

    case_type: str
    stage: str
    reference: str = ""
    subject: str = ""
    customer_name: str | None = None
    agent_name: str | None = None
    category: str | None = None
    amount: float | None = None
    fields: dict[str, str | int | float | bool | None] = Field(default_factory=dict)
    received: str | None = None  # the day the case was opened, as words ("3 December 2026")
    due: str | None = None
    today: str | None = None
    intent: str | None = None
    intent_confidence: float | None = Field(default=None, ge=0.0, le=1.0)
    urgency: str | None = None
    amounts: list[str] = Field(default_factory=list)
    dates: list[str] = Field(default_factory=list)
    next_steps: list[dict[str, str | bool | None]] = Field(default_factory=list)
    contract: dict[str, str] = Field(default_factory=dict)  # extracted contract terms worth naming
    macros: list[MacroText] = Field(default_factory=list)
    sops: dict[str, str] = Field(default_factory=dict)  # SOP path -> text, for the case's current stage


class Draft(_Strict):
    """A reply for the agent to check, edit and send; AI never sends it (policy kind draft_reply)."""

    text: str = Field(min_length=1, max_length=20_000)
    confidence: float = Field(ge=0.0, le=1.0)
    # The facts and sources it used, shown next to the draft: "intent dispute_charge (0.82)", "amount $35.00".
    evidence: list[str] = Field(default_factory=list, max_length=12)
    sources: list[str] = Field(default_factory=list, max_length=8)  # macro names and SOP paths


class Clause(_Strict):
    present: bool
    span: str | None = None
    confidence: float | None = Field(default=None, ge=0.0, le=1.0)


class Agreement(_Strict):
    title: str | None = None
    type: str | None = None


class ContractFacts(_Strict):
    parties: list[str] = Field(default_factory=list)
    agreement: Agreement = Field(default_factory=Agreement)
    effective_date: str | None = None
    agreement_date: str | None = None
    expiration_date: str | None = None
    renewal_term: str | None = None
    notice_period_to_terminate_renewal: str | None = None
    governing_law: str | None = None
    clauses: dict[str, Clause] = Field(default_factory=dict)


def empty_clauses() -> dict[str, Clause]:
    return {name: Clause(present=False, span=None) for name in CLAUSES}
