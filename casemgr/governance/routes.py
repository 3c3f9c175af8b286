"""JSON API for AI decisions, the reviewer audit, and the AI policy lifecycle. Thin: services do the work."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from casemgr.cases import service as cases
from casemgr.governance import lifecycle, service
from casemgr.users.service import Principal
from casemgr.web.deps import ReadSession, WriteSession, require
from casemgr.web.paging import MAX_LIMIT, Page

router = APIRouter(prefix="/api", tags=["governance"])

CaseReader = Annotated[Principal, Depends(require("cases.read"))]
Decider = Annotated[Principal, Depends(require("ai.decide"))]
Reviewer = Annotated[Principal, Depends(require("review.work"))]
AuditReader = Annotated[Principal, Depends(require("audit.read"))]
PolicyReader = Annotated[Principal, Depends(require("policy.read"))]
Publisher = Annotated[Principal, Depends(require("policy.publish"))]
AUDIT_ROLES = {"reviewer", "governance", "lead", "admin"}
MAX_POLICY_CHARS = 200_000


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class AcceptIn(_In):
    comment: str | None = Field(default=None, max_length=2000)
    # Required when the suggestion closes a case type with resolution codes (the root cause is the person's call).
    resolution_code: str | None = Field(default=None, max_length=50)


class RejectIn(_In):
    reason: str = Field(min_length=1, max_length=60)
    comment: str | None = Field(default=None, max_length=2000)


class ReviewIn(_In):
    # No default: the reviewer must choose (nothing is pre-selected).
    verdict: Literal["accept", "override"]
    reason_code: str | None = Field(default=None, max_length=60)
    comment: str | None = Field(default=None, max_length=2000)
    value: dict[str, Any] | None = None


class PolicyTextIn(_In):
    text: str = Field(min_length=1, max_length=MAX_POLICY_CHARS)


class SimulateIn(PolicyTextIn):
    last_n: int = Field(default=500, ge=1, le=10000)


class PublishIn(PolicyTextIn):
    reason: str = Field(min_length=1, max_length=2000)


class PolicyReviewIn(_In):
    comment: str = Field(min_length=1, max_length=2000)
    next_review_by: date


class RollbackIn(_In):
    to: str | None = Field(default=None, max_length=80)
    reason: str = Field(min_length=1, max_length=2000)


# ---------------------------------------------------------------- decisions on a case


@router.get("/cases/{case_id}/ai/decisions")
def case_decisions(case_id: int, session: ReadSession, principal: CaseReader, page: Page,
                   include_rejected: bool = False) -> list[dict[str, Any]]:
    """AI decisions on a case. Rejected ones (including `never`) only for auditors who ask for them."""
    cases.get_case(session, case_id)
    rows = service.decisions_for_case(session, case_id,
                                      include_rejected=include_rejected and principal.has_any(AUDIT_ROLES),
                                      limit=page.limit, offset=page.offset)
    return [service.decision_dict(r) for r in rows]


@router.get("/ai/suggestions")
def suggestions(session: ReadSession, principal: CaseReader, page: Page, case_id: int | None = None,
                mine: bool = True) -> list[dict[str, Any]]:
    """Pending AI suggestions (by default only those whose owner role the caller holds)."""
    roles = principal.roles if mine else None
    rows = service.pending_suggestions(session, case_id, roles, limit=page.limit, offset=page.offset)
    return [service.decision_dict(r) for r in rows]


@router.post("/ai/decisions/{decision_id}/accept")
def accept(decision_id: int, body: AcceptIn, session: WriteSession, principal: Decider) -> dict[str, Any]:
    row = service.accept_suggestion(session, decision_id, actor=principal.actor, roles=principal.roles,
                                    comment=body.comment, resolution_code=body.resolution_code)
    return service.decision_dict(row)


@router.post("/ai/decisions/{decision_id}/reject")
def reject(decision_id: int, body: RejectIn, session: WriteSession, principal: Decider) -> dict[str, Any]:
    row = service.reject_suggestion(session, decision_id, actor=principal.actor, roles=principal.roles,
                                    reason=body.reason, comment=body.comment)
    return service.decision_dict(row)


# ---------------------------------------------------------------- reviewer audit


class CommentIn(_In):
    comment: str = Field(min_length=1, max_length=2000)


@router.get("/review/queue")
def review_queue(session: ReadSession, principal: Reviewer, kind: Annotated[str | None, Query(max_length=40)] = None,
                 limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
                 after_id: Annotated[int | None, Query(ge=0, le=2**62)] = None,
                 model_version: Annotated[str | None, Query(max_length=120)] = None,
                 policy_version: Annotated[str | None, Query(max_length=80)] = None,
                 min_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
                 max_confidence: Annotated[float | None, Query(ge=0, le=1)] = None,
                 category: Annotated[str | None, Query(max_length=80)] = None) -> list[dict[str, Any]]:
    """Sampled applied decisions, the suggestions the caller's roles own and second opinions asked of the caller
    (double review, blind: the first verdict is not shown), oldest first; keyset paging: pass the last id as
    after_id. Filters: kind, category, model and policy version, confidence band [min, max)."""
    rows = service.review_queue(session, limit=limit, kind=kind, roles=principal.roles, after_id=after_id,
                                model_version=model_version, policy_version=policy_version,
                                min_confidence=min_confidence, max_confidence=max_confidence, category=category,
                                actor=principal.actor)
    return [service.queue_item(r, principal.roles, principal.actor) for r in rows]


@router.post("/review/decisions/{decision_id}/comment")
def review_comment(decision_id: int, body: CommentIn, session: WriteSession, principal: Reviewer) -> dict[str, Any]:
    """A reviewer may comment on any decision (audited); accepting or overriding is what the policy gives them."""
    return service.decision_dict(service.comment_decision(session, decision_id, actor=principal.actor,
                                                          comment=body.comment))


@router.post("/review/decisions/{decision_id}")
def review(decision_id: int, body: ReviewIn, session: WriteSession, principal: Reviewer) -> dict[str, Any]:
    row = service.review_decision(session, decision_id, actor=principal.actor, roles=principal.roles,
                                  verdict=body.verdict, reason_code=body.reason_code, comment=body.comment,
                                  value=body.value)
    return service.decision_dict(row)


@router.get("/review/metrics")
def review_metrics(session: ReadSession, _: AuditReader,
                   by: Literal["kind", "category", "model_version", "policy_version"] = "kind"
                   ) -> list[dict[str, Any]]:
    return service.metrics(session, by=by)


@router.get("/review/agreement")
def review_agreement(session: ReadSession, _: AuditReader) -> dict[str, Any]:
    """Inter-reviewer agreement on the double-reviewed slice: percent agreement and Cohen's kappa, per kind."""
    from casemgr.governance.agreement import agreement
    from casemgr.governance.policy import active_policy

    return {**agreement(session), "double_review_rate": active_policy(session).model.review.double_review_rate}


@router.get("/review/overrides.csv")
def overrides_csv(session: ReadSession, _: Reviewer, field: str = "category") -> Response:
    return Response(service.export_training_csv(session, field=field), media_type="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="ai-overrides.csv"'})


# ---------------------------------------------------------------- policy lifecycle


@router.get("/policy/ai")
def policy_active(session: ReadSession, _: PolicyReader) -> dict[str, Any]:
    return lifecycle.active_info(session)


@router.get("/policy/ai/versions")
def policy_versions(session: ReadSession, _: PolicyReader, page: Page) -> list[dict[str, Any]]:
    return lifecycle.versions(session, limit=page.offset + page.limit)[page.offset:]


@router.post("/policy/ai/validate")
def policy_validate(body: PolicyTextIn, _: PolicyReader) -> dict[str, Any]:
    return lifecycle.check(body.text, "candidate")


@router.post("/policy/ai/diff")
def policy_diff(body: PolicyTextIn, session: ReadSession, _: PolicyReader) -> dict[str, Any]:
    return lifecycle.diff(session, body.text)


@router.post("/policy/ai/simulate")
def policy_simulate(body: SimulateIn, session: ReadSession, _: PolicyReader) -> dict[str, Any]:
    return lifecycle.simulate(session, body.text, last_n=body.last_n)


@router.post("/policy/ai/publish")
def policy_publish(body: PublishIn, session: WriteSession, principal: Publisher) -> dict[str, Any]:
    """Four eyes (issue 21): creates a change request (status pending) that a different governance lead approves
    at /api/changes/{id}/approve; published at once only with the single_person_publish setting."""
    return lifecycle.request_publish(session, body.text, actor=principal.actor, user_id=principal.user_id,
                                     roles=principal.roles, reason=body.reason)


@router.post("/policy/ai/rollback")
def policy_rollback(body: RollbackIn, session: WriteSession, principal: Publisher) -> dict[str, Any]:
    return lifecycle.rollback(session, actor=principal.actor, roles=principal.roles, reason=body.reason, to=body.to)


@router.get("/policy/ai/review")
def policy_review_state(session: ReadSession, _: PolicyReader) -> dict[str, Any]:
    """Whether the policy in force is overdue for review (review_by, or the last recorded review)."""
    from casemgr.governance.policy_review import review_state

    return review_state(session)


@router.post("/policy/ai/review")
def policy_review_record(body: PolicyReviewIn, session: WriteSession, principal: Publisher) -> dict[str, Any]:
    """Record a review of the policy in force (an audited event) with the next review date."""
    from casemgr.governance.policy_review import record_review

    return record_review(session, actor=principal.actor, roles=principal.roles, comment=body.comment,
                         next_review_by=body.next_review_by)


@router.get("/policy/ai/owners")
def policy_owners(session: ReadSession, _: PolicyReader) -> dict[str, Any]:
    """Owner matrix: each decision kind, its owner role, the people holding it today, and the gaps."""
    from casemgr.governance.owners import owner_matrix

    return owner_matrix(session)
