"""/review: the reviewer's audit queue of AI decisions, accept or override with a reason code, override rates."""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from casemgr.cases.models import Case
from casemgr.db import read_session, write_session
from casemgr.errors import DomainError
from casemgr.governance.models import AIDecision
from casemgr.users.service import Principal
from casemgr.web.deps import page
from casemgr.web.pages_common import redirect, render

router = APIRouter(tags=["pages"], include_in_schema=False)

Reviewer = Annotated[Principal, Depends(page("review.work"))]


def overall(rows: list[dict[str, Any]]) -> dict[str, Any]:
    reviewed = sum(r["reviewed"] for r in rows)
    overridden = sum(r["overridden"] for r in rows)
    return {"reviewed": reviewed, "overridden": overridden, "accepted": sum(r["accepted"] for r in rows),
            "open": sum(r["open"] for r in rows),
            "override_rate": (overridden / reviewed) if reviewed else None}


def _page(request: Request, kind: str | None, *, roles: frozenset[str] = frozenset(), by: str = "kind",
          case_id: int | None = None,
          error: str | None = None, notice: str | None = None, status_code: int = 200) -> HTMLResponse:
    from casemgr.governance import service as gov
    from casemgr.governance.policy import active_policy

    with read_session() as s:
        if case_id is not None:  # one case's open decisions (linked from the case page)
            q = select(AIDecision).where(AIDecision.case_id == case_id, gov._open_for(roles))
            if kind:
                q = q.where(AIDecision.kind == kind)
            queue = list(s.execute(q.order_by(AIDecision.id)).scalars())  # type: ignore[arg-type]
        else:
            queue = gov.review_queue(s, limit=100, kind=kind or None, roles=roles)
        if by not in gov.GROUPINGS:
            by = "kind"
        by_kind = gov.metrics(s, by="kind")
        grouped = by_kind if by == "kind" else gov.metrics(s, by=by)
        cases = {c.id: c for c in s.execute(select(Case).where(
            Case.id.in_({d.case_id for d in queue}))).scalars()} if queue else {}  # type: ignore[union-attr]
        codes = list(active_policy(s).model.review.reason_codes)
        from casemgr.governance.review_speed import per_reviewer

        speed = per_reviewer(s)
    items = [{"d": d, "case": cases.get(d.case_id), "why_not": gov.can_verdict(d, roles)} for d in queue]
    from casemgr.clock import now

    ctx = {"queue": items, "metrics": grouped, "by": by, "speed": speed, "shown_at": int(now().timestamp() * 1000),
           "groupings": gov.GROUPINGS,
           "overall": overall(by_kind), "codes": codes, "kind": kind or "", "error": error, "notice": notice,
           "kinds": sorted({m["group"] for m in by_kind}), "case_id": case_id}
    return render(request, "review.html", ctx, status_code=status_code)


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request, who: Reviewer, kind: Annotated[str, Query(max_length=40)] = "",
                by: Annotated[str, Query(max_length=40)] = "kind",
                case: Annotated[int | None, Query(ge=1)] = None, done: str | None = None) -> Response:
    notices = {"accept": "Decision accepted.", "override": "Decision overridden."}
    notices["comment"] = "Comment recorded."
    return _page(request, kind, roles=who.roles, by=by, case_id=case, notice=notices.get(done or ""))


@router.post("/review/{decision_id}", response_class=HTMLResponse)
def review_post(request: Request, decision_id: int, who: Reviewer, verdict: Annotated[str, Form(max_length=20)] = "",
                reason_code: Annotated[str, Form(max_length=60)] = "",
                comment: Annotated[str, Form(max_length=2000)] = "",
                back: Annotated[str, Form(max_length=200)] = "",
                shown_at: Annotated[str, Form(max_length=20)] = "") -> Response:
    from casemgr.governance import review_speed
    from casemgr.governance import service as gov

    try:
        with write_session() as s:
            row = gov.review_decision(s, decision_id, actor=who.actor, roles=who.roles, verdict=verdict,
                                      reason_code=reason_code or None, comment=comment.strip() or None)
            review_speed.record_timing(s, actor=who.actor, decision_id=decision_id, case_id=row.case_id,
                                       verdict=verdict, seconds=review_speed.seconds_since(shown_at))
    except DomainError as exc:
        return _page(request, None, roles=who.roles, error=f"Decision {decision_id}: {exc.message}",
                     status_code=exc.status_code)
    done = "accept" if verdict == "accept" else "override"
    # Back to the same case's view when the form came from one (nothing else is accepted: no open redirect).
    if re.fullmatch(r"/review\?case=\d+", back):
        return redirect(f"{back}&done={done}")
    return redirect(f"/review?done={done}")


@router.post("/review/{decision_id}/comment", response_class=HTMLResponse)
def review_comment(request: Request, decision_id: int, who: Reviewer,
                   comment: Annotated[str, Form(max_length=2000)] = "") -> Response:
    """Comment on any decision (audited), including suggestions owned by another role."""
    from casemgr.governance import service as gov

    try:
        with write_session() as s:
            gov.comment_decision(s, decision_id, actor=who.actor, comment=comment)
    except DomainError as exc:
        return _page(request, None, roles=who.roles, error=f"Decision {decision_id}: {exc.message}",
                     status_code=exc.status_code)
    return redirect("/review?done=comment")
