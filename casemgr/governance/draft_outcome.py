"""What became of an AI reply draft: the agent sent it, edited or not (issues 17 and 20).

AI never sends a reply. The draft is a pending `draft_reply` suggestion; the case page puts it in the reply box
and the agent edits and sends it. Sending with the draft records, in the reply's own transaction, the decision's
outcome (accepted by the agent) and the edit distance between the draft and the text that went out
(casemgr.ai.drafting.distance), with an `ai.draft_sent` audit event. Reviewers read it on the decision, in the
case's audit timeline and as figures on /review (`draft_stats`).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import case, func, select
from sqlmodel import Session, col

from casemgr.ai.drafting.distance import edit_distance, words
from casemgr.audit import service as audit
from casemgr.clock import now
from casemgr.errors import Conflict, ValidationFailed
from casemgr.governance.enums import DecisionOutcome, ReviewStatus
from casemgr.governance.models import AIDecision
from casemgr.limits import ACTOR_CHARS

KIND = "draft_reply"
UNCHANGED_BELOW = 0.05  # "sent as drafted": fewer than 1 word in 20 changed


def pending_draft(session: Session, case_id: int) -> AIDecision | None:
    """The newest reply draft still waiting for the agent on this case (the policy suggested it), or None.
    A draft the policy rejected is never returned: it is not a suggestion."""
    return session.execute(
        select(AIDecision).where(col(AIDecision.case_id) == case_id, col(AIDecision.kind) == KIND,
                                 col(AIDecision.outcome) == DecisionOutcome.SUGGESTED,
                                 col(AIDecision.review_status) == ReviewStatus.PENDING)
        .order_by(col(AIDecision.id).desc()).limit(1)
    ).scalar_one_or_none()


def record_sent(session: Session, case_id: int, decision_id: int, sent_text: str, *, actor: str,
                message_id: int | None = None) -> AIDecision:
    """The agent sent a reply that started from draft `decision_id`: mark it accepted with the edit distance.

    Call it in the reply's transaction, after the reply is queued. 422 when the id is not a draft of this case;
    409 when the draft is no longer pending (rejected or used by someone else meanwhile): the reply is not sent
    either, and the page shows the reply box again without the draft."""
    row = session.get(AIDecision, decision_id)
    if row is None or row.case_id != case_id or row.kind != KIND:
        raise ValidationFailed(f"AI decision {decision_id} is not a reply draft on this case", field="ai_decision")
    if row.outcome != DecisionOutcome.SUGGESTED or row.review_status != ReviewStatus.PENDING:
        by = f" by {row.reviewed_by}" if row.reviewed_by else ""
        raise Conflict(f"the AI draft was {row.review_status}{by} meanwhile; send your reply again without it",
                       decision_id=decision_id, review_status=str(row.review_status))
    draft = str((row.proposed or {}).get("text") or "")
    distance = edit_distance(draft, sent_text)
    row.edit_distance = distance
    row.review_status = ReviewStatus.ACCEPTED
    row.reviewed_by = actor[:ACTOR_CHARS]
    row.reviewed_at = now()
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="ai.draft_sent", case_id=case_id, entity=f"ai_decision:{row.id}",
                 after={"kind": KIND, "edit_distance": distance, "draft_words": len(words(draft)),
                        "sent_words": len(words(sent_text)), "message_id": message_id})
    return row


def draft_stats(session: Session) -> dict[str, Any]:
    """Figures for reviewers: drafts made, sent (with how much they were changed), rejected and still open."""
    dist = col(AIDecision.edit_distance)
    sent, mean, unchanged = session.execute(
        select(func.count(), func.avg(dist), func.sum(case((dist < UNCHANGED_BELOW, 1), else_=0)))
        .select_from(AIDecision).where(col(AIDecision.kind) == KIND, dist.is_not(None))).one()
    by_status = {str(k): int(n) for k, n in session.execute(
        select(col(AIDecision.review_status), func.count()).where(col(AIDecision.kind) == KIND)
        .group_by(col(AIDecision.review_status))).all()}
    refused = session.execute(select(func.count()).select_from(AIDecision).where(
        col(AIDecision.kind) == KIND, col(AIDecision.outcome) == DecisionOutcome.REJECTED)).scalar_one()
    return {"drafted": sum(by_status.values()), "sent": int(sent or 0),
            "mean_edit_distance": round(float(mean), 4) if mean is not None else None,
            "unchanged": int(unchanged or 0), "open": int(by_status.get(ReviewStatus.PENDING, 0)),
            "rejected": int(by_status.get(ReviewStatus.REJECTED, 0)), "refused_by_policy": int(refused)}



def recent_sent(session: Session, limit: int = 10) -> list[AIDecision]:
    """The drafts sent most recently, with their edit distances (the review page's decision history)."""
    return list(session.execute(
        select(AIDecision).where(col(AIDecision.kind) == KIND, col(AIDecision.edit_distance).is_not(None))
        .order_by(col(AIDecision.reviewed_at).desc(), col(AIDecision.id).desc()).limit(limit)).scalars())
