"""/review: the reviewer's audit queue of AI decisions, accept or override with a reason code, override rates."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlmodel import col

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


# Confidence bands of the queue filter: [min, max).
BANDS: dict[str, tuple[float | None, float | None]] = {"low": (None, 0.6), "medium": (0.6, 0.8), "high": (0.8, None)}


@dataclass(frozen=True)
class Filters:
    kind: str = ""
    category: str = ""
    band: str = ""
    model: str = ""
    policy: str = ""

    def active(self) -> bool:
        return any((self.kind, self.category, self.band, self.model, self.policy))


def _categories() -> list[str]:
    from casemgr.casetypes.registry import get_registry

    reg = get_registry()
    out: set[str] = set()
    for ct in reg.case_types.values():
        for f in ct.fields:
            if f.name == "category" and f.choices:
                out.update(f.choices)
    return sorted(out)


def _choices(d: AIDecision, case: Case | None) -> list[str]:
    """The values a reviewer may give instead of a classify decision's (so an override teaches the right label)."""
    if d.kind != "classify" or not d.field:
        return []
    if d.field == "category":
        from casemgr.casetypes.registry import get_registry

        if case is None:
            return []
        ct = get_registry().case_types.get(case.case_type)
        return next((list(f.choices or []) for f in ct.fields if f.name == "category"), []) if ct else []
    from casemgr.cases.enums import Sentiment, Urgency

    return list({"urgency": Urgency.values(), "sentiment": Sentiment.values()}.get(d.field, []))


def _page(request: Request, kind: str | None, *, roles: frozenset[str] = frozenset(), by: str = "kind",
          case_id: int | None = None, filters: Filters | None = None, actor: str | None = None,
          error: str | None = None, notice: str | None = None, status_code: int = 200) -> HTMLResponse:
    from casemgr.governance import service as gov
    from casemgr.governance.agreement import agreement
    from casemgr.governance.policy import active_policy

    f = filters or Filters(kind=kind or "")
    lo, hi = BANDS.get(f.band, (None, None))
    with read_session() as s:
        if case_id is not None:  # one case's open decisions (linked from the case page)
            q = select(AIDecision).where(col(AIDecision.case_id) == case_id, gov._open_for(roles, actor))
            if kind:
                q = q.where(col(AIDecision.kind) == kind)
            queue = list(s.execute(q.order_by(col(AIDecision.id))).scalars())
        else:
            queue = gov.review_queue(s, limit=100, kind=f.kind or None, roles=roles, category=f.category or None,
                                     min_confidence=lo, max_confidence=hi, model_version=f.model or None,
                                     policy_version=f.policy or None, actor=actor)
        if by not in gov.GROUPINGS:
            by = "kind"
        by_kind = gov.metrics(s, by="kind")
        grouped = by_kind if by == "kind" else gov.metrics(s, by=by)
        cases = {c.id: c for c in s.execute(select(Case).where(
            Case.id.in_({d.case_id for d in queue}))).scalars()} if queue else {}  # type: ignore[union-attr]
        policy = active_policy(s)
        codes = list(policy.model.review.reason_codes)
        from casemgr.governance.review_speed import per_reviewer

        speed = per_reviewer(s, quick_s=policy.model.review.quick_accept_seconds)
        agree = {**agreement(s), "rate": policy.model.review.double_review_rate}
        from casemgr.governance import draft_outcome

        recent = draft_outcome.recent_sent(s)
        draft_cases = {c.id: c for c in s.execute(select(Case).where(
            col(Case.id).in_({d.case_id for d in recent}))).scalars()} if recent else {}
        drafts = {"stats": draft_outcome.draft_stats(s), "recent": recent, "cases": draft_cases}
    items = [{"d": d, "case": cases.get(d.case_id), "why_not": gov.can_verdict(d, roles, actor),
              "second": gov.wants_second_opinion(d), "choices": _choices(d, cases.get(d.case_id))} for d in queue]
    from casemgr.clock import now

    ctx = {"queue": items, "metrics": grouped, "by": by, "speed": speed, "shown_at": int(now().timestamp() * 1000),
           "groupings": gov.GROUPINGS,
           "overall": overall(by_kind), "codes": codes, "kind": kind or "", "error": error, "notice": notice,
           "kinds": sorted({m["group"] for m in by_kind}), "case_id": case_id, "agreement": agree, "f": f,
           "categories": _categories(), "bands": list(BANDS),
           "drafts": drafts}
    return render(request, "review.html", ctx, status_code=status_code)


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request, who: Reviewer, kind: Annotated[str, Query(max_length=40)] = "",
                by: Annotated[str, Query(max_length=40)] = "kind",
                case: Annotated[int | None, Query(ge=1)] = None, done: str | None = None,
                category: Annotated[str, Query(max_length=80)] = "",
                band: Annotated[str, Query(max_length=10)] = "",
                model: Annotated[str, Query(max_length=120)] = "",
                policy: Annotated[str, Query(max_length=80)] = "") -> Response:
    notices = {"accept": "Decision accepted.", "override": "Decision overridden."}
    notices["comment"] = "Comment recorded."
    notices["second"] = "Second opinion recorded."
    filters = Filters(kind=kind, category=category, band=band if band in BANDS else "", model=model.strip(),
                      policy=policy.strip())
    return _page(request, kind, roles=who.roles, by=by, case_id=case, notice=notices.get(done or ""),
                 filters=filters, actor=who.actor)


@router.post("/review/{decision_id}", response_class=HTMLResponse)
def review_post(request: Request, decision_id: int, who: Reviewer, verdict: Annotated[str, Form(max_length=20)] = "",
                reason_code: Annotated[str, Form(max_length=60)] = "",
                comment: Annotated[str, Form(max_length=2000)] = "",
                back: Annotated[str, Form(max_length=200)] = "",
                shown_at: Annotated[str, Form(max_length=20)] = "",
                value: Annotated[str, Form(max_length=80)] = "") -> Response:
    from casemgr.governance import review_speed
    from casemgr.governance import service as gov

    try:
        with write_session() as s:
            current = gov.get_decision(s, decision_id)
            second = gov.wants_second_opinion(current)
            # The right value of a classify override (category, urgency, sentiment): what learning needs.
            new_value = ({current.field: value} if value and verdict == "override" and current.kind == "classify"
                         and current.field and not second else None)
            row = gov.review_decision(s, decision_id, actor=who.actor, roles=who.roles, verdict=verdict,
                                      reason_code=reason_code or None, comment=comment.strip() or None,
                                      value=new_value)
            review_speed.record_timing(s, actor=who.actor, decision_id=decision_id, case_id=row.case_id,
                                       verdict=verdict, seconds=review_speed.seconds_since(shown_at))
    except DomainError as exc:
        return _page(request, None, roles=who.roles, error=f"Decision {decision_id}: {exc.message}",
                     status_code=exc.status_code, actor=who.actor)
    done = "second" if second else ("accept" if verdict == "accept" else "override")
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
                     status_code=exc.status_code, actor=who.actor)
    return redirect("/review?done=comment")
