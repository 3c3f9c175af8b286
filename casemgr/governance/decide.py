"""The one choke point between AI output and a case: `decide(case, output, policy) -> Outcome`.

decide() is pure and deterministic: the same case facts, output and policy always give the same outcome,
including whether an applied decision is sampled for review (a hash of case id, kind and field compared
with the sample rate). It changes nothing; casemgr.governance.service records the outcome and applies it.

Order of checks (first match wins):
 1. kill switch `off`                      -> rejected
 2. kind not in the policy / mode `never`  -> rejected (never even offered as a suggestion)
 3. case closed, or the output is invalid for this case (unknown category, stage not allowed, ...) -> rejected
 4. kill switch `suggest_only`             -> suggested(owner)
 5. mode `suggest`                         -> suggested(owner)
 6. auto, but over a limit (refund amount) -> suggested(owner)
 7. auto, confidence missing or < threshold -> suggested(owner) (or rejected if below_threshold: reject)
 8. auto, confidence >= threshold          -> applied (sampled for review at the policy's rate)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from casemgr.cases.enums import CaseStatus
from casemgr.governance import kinds
from casemgr.governance.enums import DecisionOutcome
from casemgr.governance.policy import DecisionPolicy, Policy

Status = DecisionOutcome


@dataclass(frozen=True)
class AIOutput:
    """One proposal from an AI provider: what it wants (`value`), for which kind, and how sure it is."""

    kind: str
    value: dict[str, Any]
    confidence: float | None
    field: str | None = None
    model_version: str | None = None
    provider: str | None = None
    rationale: str | None = None
    ai_call_id: int | None = None

    def target_field(self) -> str | None:
        kind = kinds.get(self.kind)
        return kind.target_field(self) if kind else None


@dataclass(frozen=True)
class CaseFacts:
    """What decide() may look at about a case. Stored with each decision so simulate/replay see the same."""

    id: int
    case_type: str
    stage: str
    status: str = CaseStatus.OPEN
    category: str | None = None
    amount: float | None = None
    transitions: tuple[str, ...] = ()
    final_stages: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()

    @classmethod
    def from_case(cls, case: Any) -> CaseFacts:
        from casemgr.casetypes.registry import get_registry
        from casemgr.casetypes.versions import case_type_of

        ct = case_type_of(case)  # the case's pinned case-types version (issue 22)
        sd = ct.stage(case.stage)
        cats: tuple[str, ...] = ()
        for f in ct.fields:
            if f.name == "category" and f.choices:
                cats = tuple(f.choices)
        return cls(
            id=int(case.id), case_type=case.case_type, stage=case.stage, status=case.status,
            category=case.category, amount=case.amount,
            transitions=tuple(sd.transitions) if sd else (),
            final_stages=tuple(s.name for s in ct.stages if s.final),
            categories=cats, queues=tuple(sorted(get_registry().org.queue_names)),
        )

    @classmethod
    def from_context(cls, ctx: dict[str, Any]) -> CaseFacts:
        data = dict(ctx)
        for key in ("transitions", "final_stages", "categories", "queues"):
            data[key] = tuple(data.get(key) or ())
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    def to_context(self) -> dict[str, Any]:
        # Flat fields only, so no dataclasses.asdict (its deep copy was a millisecond per decision row).
        return {k: list(v) if isinstance(v, tuple) else v
                for k, v in ((f, getattr(self, f)) for f in self.__dataclass_fields__)}


@dataclass(frozen=True)
class Outcome:
    status: Status
    reason: str
    owner: str | None = None
    threshold: float | None = None
    sampled: bool = False
    policy_version: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def applied(self) -> bool:
        return self.status == DecisionOutcome.APPLIED


def sample_hit(case_id: int, kind: str, field_name: str | None, rate: float) -> bool:
    """Deterministic review sampling: the same decision is always in or out of the sample at a given rate."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    h = hashlib.sha256(f"{case_id}:{kind}:{field_name or ''}".encode()).digest()
    return int.from_bytes(h[:8], "big") / 2**64 < rate


def category_of(facts: CaseFacts, output: AIOutput) -> str | None:
    """The category a decision is judged under: the one the output names (a classification), else the case's."""
    kind = kinds.get(output.kind)
    return (kind.category(output) if kind else None) or facts.category


def sample_rate_for(policy: Policy, facts: CaseFacts, output: AIOutput) -> tuple[float, str | None]:
    """The review sampling rate of an applied decision and the stratum that set it (None: the base rate).

    The highest rate of the matching strata wins, so a stratum only ever oversamples. The rate is stored with
    the decision; metrics weight each reviewed one by 1/rate (Horvitz-Thompson), which keeps rates unbiased."""
    review = policy.model.review
    category = category_of(facts, output)
    rate, name = review.sample_rate, None
    for st in review.strata:
        low = st.confidence_below is not None and (output.confidence is None or output.confidence < st.confidence_below)
        rare = bool(st.categories) and category in st.categories
        if (low or rare) and st.rate > rate:
            rate, name = st.rate, st.name
    return rate, name


def threshold_for(dp: DecisionPolicy, facts: CaseFacts, output: AIOutput) -> float | None:
    """Per-category beats per-case-type beats the kind's default threshold."""
    category = category_of(facts, output)
    if category and category in dp.thresholds_by_category:
        return float(dp.thresholds_by_category[category])
    if facts.case_type in dp.thresholds_by_case_type:
        return float(dp.thresholds_by_case_type[facts.case_type])
    return dp.threshold


def invalid_reason(facts: CaseFacts, output: AIOutput) -> str | None:
    """Why this output cannot apply to this case at all (None when it could)."""
    if facts.status == CaseStatus.CLOSED:
        return "case is closed"
    if output.confidence is not None and not 0.0 <= output.confidence <= 1.0:
        return f"confidence {output.confidence} is outside 0..1"
    kind = kinds.get(output.kind)
    if kind is None:
        return f"unknown decision kind {output.kind!r}"
    return kind.invalid(facts, output.value if isinstance(output.value, dict) else {}, output)


def over_limit(policy: Policy, facts: CaseFacts, output: AIOutput) -> str | None:
    kind = kinds.get(output.kind)
    return kind.over_limit(policy, facts, output) if kind else None


def decide(case: Any, output: AIOutput, policy: Policy | None = None) -> Outcome:
    """Decide what happens to one AI output on one case under `policy` (default: the active policy).

    `case` is a Case (its facts are read) or CaseFacts (as recorded). Pure given the policy: no I/O
    beyond reading the (cached) case-type registry when given a Case.
    """
    if policy is None:
        from casemgr.governance.policy import active_policy

        policy = active_policy()
    facts = case if isinstance(case, CaseFacts) else CaseFacts.from_case(case)
    pv = policy.version

    def out(status: Status, reason: str, owner: str | None = None, threshold: float | None = None,
            sampled: bool = False) -> Outcome:
        return Outcome(status=status, reason=reason, owner=owner, threshold=threshold, sampled=sampled,
                       policy_version=pv)

    if policy.kill_switch == "off":
        return out(DecisionOutcome.REJECTED, "kill switch: AI decisions are off")
    dp = policy.decision(output.kind)
    if dp is None:
        return out(DecisionOutcome.REJECTED, f"decision kind {output.kind!r} is not governed by the policy")
    if dp.mode == "never":
        return out(DecisionOutcome.REJECTED, f"policy: AI may never {output.kind}", owner=dp.owner)
    bad = invalid_reason(facts, output)
    if bad:
        return out(DecisionOutcome.REJECTED, f"invalid: {bad}", owner=dp.owner)
    threshold = threshold_for(dp, facts, output)
    if policy.kill_switch == "suggest_only":
        return out(DecisionOutcome.SUGGESTED, "kill switch: suggestions only", dp.owner, threshold)
    if dp.mode == "suggest":
        return out(DecisionOutcome.SUGGESTED, "policy: a human must accept", dp.owner, threshold)
    limit = over_limit(policy, facts, output)
    if limit:
        return out(DecisionOutcome.SUGGESTED, limit, dp.owner, threshold)
    assert threshold is not None  # the schema requires one in auto mode
    # A threshold of 0 means "always apply"; otherwise an output without a confidence cannot clear it.
    if (output.confidence is None and threshold > 0) or (output.confidence or 0.0) < threshold:
        conf = "no confidence" if output.confidence is None else f"confidence {output.confidence:.3f}"
        reason = f"{conf} below threshold {threshold:.3f}"
        if dp.below_threshold == "reject":
            return out(DecisionOutcome.REJECTED, reason, dp.owner, threshold)
        return out(DecisionOutcome.SUGGESTED, reason, dp.owner, threshold)
    rate, stratum = sample_rate_for(policy, facts, output)
    sampled = sample_hit(facts.id, output.kind, output.field, rate)
    # Of the sampled ones, a second (independent) hash picks the double-reviewed slice.
    double = sampled and sample_hit(facts.id, f"{output.kind}:second", output.field,
                                    policy.model.review.double_review_rate)
    return Outcome(status=DecisionOutcome.APPLIED,
                   reason=f"confidence {output.confidence or 0.0:.3f} >= threshold {threshold:.3f}", owner=dp.owner,
                   threshold=threshold, sampled=sampled, policy_version=pv,
                   extra={"sample_rate": rate, "stratum": stratum, "double_review": double})
