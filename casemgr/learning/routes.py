"""/governance/models and /api/ai/models: candidates with their reports, activation requests, history, rollback.

Viewing needs policy.read; requesting activation and rolling back need policy.publish (governance leads), as for
the AI policy. Approving is the change-request flow (/governance/changes, /api/changes/{id}/approve): a second
lead. Thin: casemgr.learning.activation does the work and the audit.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from casemgr.documents import changes
from casemgr.errors import DomainError
from casemgr.learning import activation, store
from casemgr.users.service import Principal
from casemgr.web.deps import ReadSession, WriteSession, page, require

router = APIRouter(tags=["governance"])
Reader = Annotated[Principal, Depends(require("policy.read"))]
Publisher = Annotated[Principal, Depends(require("policy.publish"))]
PageReader = Annotated[Principal, Depends(page("policy.read"))]
PagePublisher = Annotated[Principal, Depends(page("policy.publish"))]
Version = Annotated[str, Path(pattern=r"^[0-9a-f]{12}$")]


class RequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=changes.MAX_COMMENT)


class RollbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: str | None = Field(default=None, max_length=80)
    reason: str = Field(min_length=1, max_length=changes.MAX_COMMENT)


def _summary(session: Session, report: dict[str, Any], can_publish: bool) -> dict[str, Any]:
    why = activation.why_not_offered(session, report)
    if why is None and not can_publish:
        why = "requesting activation needs the governance role"
    out = {k: v for k, v in report.items() if k != "holdout_decisions"}
    return {**out, "can_request": why is None, "why_not": why}


def overview(session: Session, who: Principal) -> dict[str, Any]:
    from casemgr.learning.candidates import active_model

    active = active_model(session)
    can_publish = who.has_any({changes.LEAD_ROLE})
    return {"active": {"version": active.version, "source": active.source, "artifact": active.path.name,
                       "trained_at": active.model.meta.get("trained_at"),
                       "training_data": active.model.meta.get("training_data")},
            "candidates": [_summary(session, r, can_publish) for r in store.reports()],
            "history": activation.history(session)}


@router.get("/api/ai/models")
def models(session: ReadSession, who: Reader) -> dict[str, Any]:
    """The category model in force, candidate reports (newest first; can_request says whether a lead may ask
    for activation, why_not why not) and the history of models in force."""
    return overview(session, who)


@router.get("/api/ai/models/{version}")
def model_report(version: Version, _: Reader) -> dict[str, Any]:
    return store.read_report(version)


@router.post("/api/ai/models/{version}/request")
def request_model(version: Version, body: RequestIn, session: WriteSession, who: Publisher) -> dict[str, Any]:
    """Four eyes: a pending change request (kind ai-model) that a different lead approves at
    /api/changes/{id}/approve. 422 for a refused candidate, 409 when another model is in force since it was compared."""
    row = activation.request_activation(session, version, actor=who.actor, user_id=who.user_id, roles=who.roles,
                                        reason=body.reason)
    return changes.as_dict(row)


@router.post("/api/ai/models/rollback")
def rollback_model(body: RollbackIn, session: WriteSession, who: Publisher) -> dict[str, Any]:
    pub = activation.rollback(session, actor=who.actor, roles=who.roles, reason=body.reason, to=body.to)
    return {"version": pub.version, "changed": pub.changed}


# ---------------------------------------------------------------- pages

NOTICES = {"request": "Submitted for approval: a different governance lead must approve it before it is in force.",
           "approve": "Approved: the new model is in force.", "reject": "Change request rejected.",
           "rollback": "Rolled back."}


def _page(request: Request, who: Principal, *, notice: str | None = None, error: str | None = None,
          status_code: int = 200) -> HTMLResponse:
    from casemgr.db import read_session
    from casemgr.governance.changes_api import pending_for
    from casemgr.web.pages_common import render

    with read_session() as s:
        ctx = overview(s, who)
        pending = pending_for(s, who, "ai-model")
    return render(request, "models.html", {**ctx, "pending": pending, "single_person": changes.single_person_publish(),
                                           "can_publish": who.has_any({changes.LEAD_ROLE}), "notice": notice,
                                           "error": error}, status_code=status_code)


@router.get("/governance/models", response_class=HTMLResponse, include_in_schema=False)
def models_page(request: Request, who: PageReader, done: Annotated[str | None, Query(max_length=20)] = None
                ) -> Response:
    return _page(request, who, notice=NOTICES.get(done or ""))


@router.post("/governance/models/{version}/request", response_class=HTMLResponse, include_in_schema=False)
def request_page(request: Request, version: Version, who: PagePublisher,
                 reason: Annotated[str, Form(max_length=changes.MAX_COMMENT)] = "") -> Response:
    from casemgr.db import write_session
    from casemgr.web.pages_common import redirect

    if not reason.strip():
        return _page(request, who, error="Give a reason for activating this model.", status_code=422)
    try:
        with write_session() as s:
            row = activation.request_activation(s, version, actor=who.actor, user_id=who.user_id, roles=who.roles,
                                                reason=reason)
    except DomainError as exc:
        return _page(request, who, error=exc.message, status_code=exc.status_code)
    return redirect("/governance/models?done=" + ("approve" if row.status == "published" else "request"))


@router.post("/governance/models/rollback", response_class=HTMLResponse, include_in_schema=False)
def rollback_page(request: Request, who: PagePublisher, version: Annotated[str, Form(max_length=80)] = "",
                  reason: Annotated[str, Form(max_length=changes.MAX_COMMENT)] = "") -> Response:
    from casemgr.db import write_session
    from casemgr.web.pages_common import redirect

    try:
        with write_session() as s:
            activation.rollback(s, actor=who.actor, roles=who.roles, reason=reason, to=version or None)
    except DomainError as exc:
        return _page(request, who, error=exc.message, status_code=exc.status_code)
    return redirect("/governance/models?done=rollback")
