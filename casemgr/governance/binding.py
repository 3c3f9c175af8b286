"""The governance side of casemgr.cases.ai_gate: a rule consequence driven by AI facts is an AI decision.

`gate` asks the pure decide() whether the consequence's kind may be applied at the AI facts' confidence;
`record_held` files what was held back as a suggestion to the kind's owner (once per open suggestion of the
same kind and value on the case), so the owner sees it and the decision history shows why.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from casemgr.cases.ai_gate import GateVerdict
from casemgr.governance.decide import AIOutput, decide
from casemgr.governance.models import AIDecision


def gate(case: Any, kind: str, value: dict[str, Any], confidence: float) -> GateVerdict:
    outcome = decide(case, AIOutput(kind=kind, value=value, confidence=confidence))
    return GateVerdict(may_apply=outcome.applied, reason=outcome.reason, threshold=outcome.threshold)


def record_held(session: Session, case: Any, held: dict[str, Any]) -> None:
    from casemgr.governance.service import record_decision

    pending = session.execute(
        select(col(AIDecision.proposed)).where(col(AIDecision.case_id) == case.id, col(AIDecision.kind) == held["kind"],
                                               col(AIDecision.outcome) == "suggested",
                                               col(AIDecision.review_status) == "pending")
    ).scalars().all()
    if any(p == held["value"] for p in pending):
        return  # the same proposal already waits for its owner
    facts = ", ".join(f"{k} ({v:.2f})" for k, v in held["ai_facts"].items())
    record_decision(session, case, AIOutput(
        kind=held["kind"], value=held["value"], confidence=held["confidence"], provider="rules",
        rationale=f"rule {held['rule']} on AI facts {facts}: {held['reason']}"[:1000],
    ), route=False)
