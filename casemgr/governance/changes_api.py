"""JSON API and pages for change requests (four eyes, issue 21): list, show, approve, reject.

Drafting happens where each document is edited (POST /api/policy/ai/publish, POST /api/rules/publish and the
governance pages); this router decides. Thin: casemgr.documents.changes does the work and the audit.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from casemgr.documents import changes
from casemgr.errors import DomainError
from casemgr.users.service import Principal
from casemgr.web.deps import ReadSession, WriteSession, page, require
from casemgr.web.paging import MAX_LIMIT

router = APIRouter(tags=["governance"])
ChangeReader = Annotated[Principal, Depends(require("changes.read"))]
ChangeDecider = Annotated[Principal, Depends(require("changes.decide"))]
PageReader = Annotated[Principal, Depends(page("changes.read"))]
PageDecider = Annotated[Principal, Depends(page("changes.decide"))]
Status = Literal["pending", "published", "rejected"]


class DecideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str | None = Field(default=None, max_length=changes.MAX_COMMENT)


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    comment: str = Field(min_length=1, max_length=changes.MAX_COMMENT)


@router.get("/api/changes")
def list_changes(session: ReadSession, _: ChangeReader, status: Status | None = None,
                 kind: Annotated[str | None, Query(max_length=30)] = None,
                 before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
                 limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50) -> list[dict[str, Any]]:
    """Change requests newest first (keyset: pass the last id as before_id)."""
    return [changes.as_dict(r) for r in changes.listing(session, status=status, kind=kind, limit=limit,
                                                         before_id=before_id)]


@router.get("/api/changes/{request_id}")
def show_change(request_id: int, session: ReadSession, who: ChangeReader) -> dict[str, Any]:
    row = changes.get(session, request_id)
    why = changes.may_decide(session, row, actor=who.actor, user_id=who.user_id, roles=who.roles)
    return {**changes.as_dict(row, with_files=True), "can_decide": why is None, "why_not": why}


@router.post("/api/changes/{request_id}/approve")
def approve_change(request_id: int, body: DecideIn, session: WriteSession, who: ChangeDecider) -> dict[str, Any]:
    row, published = changes.approve(session, request_id, actor=who.actor, user_id=who.user_id, roles=who.roles,
                                     comment=body.comment)
    return {**changes.as_dict(row), "published_version": published.version}


@router.post("/api/changes/{request_id}/reject")
def reject_change(request_id: int, body: RejectIn, session: WriteSession, who: ChangeDecider) -> dict[str, Any]:
    row = changes.reject(session, request_id, actor=who.actor, user_id=who.user_id, roles=who.roles,
                         comment=body.comment)
    return changes.as_dict(row)


# ---------------------------------------------------------------- pages


def pending_for(session: Any, who: Principal, kind: str | None = None) -> list[dict[str, Any]]:
    """Pending requests with what this person may do: the pages offer Approve/Reject only when it would work."""
    out = []
    for row in changes.listing(session, status="pending", kind=kind, limit=50):
        why = changes.may_decide(session, row, actor=who.actor, user_id=who.user_id, roles=who.roles)
        out.append({**changes.as_dict(row), "can_decide": why is None, "why_not": why})
    return out


def _back(kind: str) -> str:
    return {"rules": "/governance/rules", "ai-model": "/governance/models", "case-types": "/governance/processes",
            "sop": "/governance/processes"}.get(kind, "/governance/policy")


@router.get("/governance/changes", response_class=HTMLResponse, include_in_schema=False)
def changes_page(request: Request, who: PageReader, done: Annotated[str | None, Query(max_length=20)] = None
                 ) -> Response:
    return _changes_page(request, who, notice={"approve": "Approved and published.",
                                               "reject": "Rejected."}.get(done or ""))


def _changes_page(request: Request, who: Principal, *, notice: str | None = None, error: str | None = None,
                  status_code: int = 200) -> Response:
    from casemgr.db import read_session
    from casemgr.web.pages_common import render

    with read_session() as session:
        recent = [changes.as_dict(r) for r in changes.listing(session, limit=50) if r.status != "pending"]
        pending = pending_for(session, who)
    return render(request, "changes.html", {
        "pending": pending, "recent": recent, "single_person": changes.single_person_publish(),
        "notice": notice, "error": error}, status_code=status_code)


def _decide_page(request: Request, request_id: int, who: Principal, approve: bool, comment: str) -> Response:
    from casemgr.db import write_session
    from casemgr.web.pages_common import redirect

    try:
        with write_session() as s:
            if approve:
                row, _ = changes.approve(s, request_id, actor=who.actor, user_id=who.user_id, roles=who.roles,
                                         comment=comment)
            else:
                row = changes.reject(s, request_id, actor=who.actor, user_id=who.user_id, roles=who.roles,
                                     comment=comment)
    except DomainError as exc:
        if exc.status_code == 404:
            raise
        return _changes_page(request, who, error=exc.message, status_code=exc.status_code)
    return redirect(f"{_back(row.kind)}?done={'approve' if approve else 'reject'}")


@router.post("/governance/changes/{request_id}/approve", response_class=HTMLResponse, include_in_schema=False)
def approve_page(request: Request, request_id: int, who: PageDecider,
                 comment: Annotated[str, Form(max_length=changes.MAX_COMMENT)] = "") -> Response:
    return _decide_page(request, request_id, who, True, comment)


@router.post("/governance/changes/{request_id}/reject", response_class=HTMLResponse, include_in_schema=False)
def reject_page(request: Request, request_id: int, who: PageDecider,
                comment: Annotated[str, Form(max_length=changes.MAX_COMMENT)] = "") -> Response:
    return _decide_page(request, request_id, who, False, comment)
