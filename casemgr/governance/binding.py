"""The governance side of casemgr.cases.ai_gate: a rule consequence driven by AI facts is an AI decision.

`gate` asks the pure decide() whether the consequence's kind may be applied at the AI facts' confidence;
`record_held` files what was held back as a suggestion to the kind's owner (once per open suggestion of the
same kind and value on the case), so the owner sees it and the decision history shows why.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from casemgr.cases.ai_gate import GateVerdict
from casemgr.governance.decide import AIOutput, decide
from casemgr.governance.models import AIDecision


def gate(case: Any, kind: str, value: dict[str, Any], confidence: float) -> GateVerdict:
    outcome = decide(case, AIOutput(kind=kind, value=value, confidence=confidence))
    return GateVerdict(may_apply=outcome.applied, reason=outcome.reason, threshold=outcome.threshold)


def held_output(held: dict[str, Any]) -> AIOutput:
    """The suggestion a held-back rule consequence becomes (this writer and the batch writer, enrich_plan)."""
    facts = ", ".join(f"{k} ({v:.2f})" for k, v in held["ai_facts"].items())
    return AIOutput(kind=held["kind"], value=held["value"], confidence=held["confidence"], provider="rules",
                    rationale=f"rule {held['rule']} on AI facts {facts}: {held['reason']}"[:1000])


def pending_proposals(session: Session, case_ids: list[int], kinds: set[str]) -> set[tuple[int, str, str]]:
    """(case id, kind, proposed value as canonical JSON) of the suggestions still waiting for their owner."""
    if not case_ids or not kinds:
        return set()
    rows = session.execute(
        select(col(AIDecision.case_id), col(AIDecision.kind), col(AIDecision.proposed))
        .where(col(AIDecision.case_id).in_(case_ids), col(AIDecision.kind).in_(sorted(kinds)),
               col(AIDecision.outcome) == "suggested", col(AIDecision.review_status) == "pending")
    ).all()
    return {(int(c), str(k), proposal_key(p)) for c, k, p in rows}


def proposal_key(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def record_held(session: Session, case: Any, held: dict[str, Any]) -> None:
    from casemgr.governance.service import record_decision

    if (case.id, held["kind"], proposal_key(held["value"])) in pending_proposals(session, [case.id], {held["kind"]}):
        return  # the same proposal already waits for its owner
    record_decision(session, case, held_output(held), route=False)
