"""/queue: my cases and team queues, filters, full-text search, SLA badges, keyset pages, htmx claim/assign."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlmodel import Session

from casemgr.cases import service
from casemgr.cases.models import Case
from casemgr.cases.schemas import CaseFilters
from casemgr.casetypes.registry import get_registry
from casemgr.db import read_session, write_session
from casemgr.errors import DomainError
from casemgr.users.models import User, UserRole
from casemgr.users.service import Principal
from casemgr.web.deps import ReadSession, page
from casemgr.web.pages_common import error_page, render

router = APIRouter(tags=["pages"], include_in_schema=False)

Reader = Annotated[Principal, Depends(page("cases.read"))]
Assigner = Annotated[Principal, Depends(page("cases.assign"))]

PAGE_SIZE = 50
SLA_STATES = ["on_track", "at_risk", "breached", "paused", "none"]
PRIORITIES = ["urgent", "high", "normal", "low"]
ASSIGNABLE_ROLES = ("agent", "lead", "legal", "finance", "compliance")


def usernames(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(User.id, User.username).where(User.id.in_(ids))).all()  # type: ignore[union-attr]
    return {int(i): n for i, n in rows}


def assignable_users(session: Session) -> list[str]:
    q = (select(User.username).join(UserRole, UserRole.user_id == User.id)
         .where(UserRole.role.in_(ASSIGNABLE_ROLES), User.active.is_(True))  # type: ignore[attr-defined]
         .distinct().order_by(User.username).limit(500))
    return list(session.execute(q).scalars())


def team_queues(principal: Principal) -> list[str]:
    org = get_registry().org
    return [q.name for q in org.queues if q.owner_role in principal.roles]


@router.get("/queue", response_class=HTMLResponse)
def queue_page(
    request: Request,
    session: ReadSession,
    who: Reader,
    view: Annotated[str, Query(max_length=20)] = "all",
    queue: Annotated[str, Query(max_length=80)] = "",
    case_type: Annotated[str, Query(alias="type", max_length=50)] = "",
    stage: Annotated[str, Query(max_length=50)] = "",
    priority: Annotated[str, Query(max_length=20)] = "",
    sla_state: Annotated[str, Query(max_length=20)] = "",
    assignee: Annotated[str, Query(max_length=100)] = "",
    category: Annotated[str, Query(max_length=80)] = "",
    status: Annotated[str, Query(max_length=20)] = "open",
    q: Annotated[str, Query(max_length=200)] = "",
    cursor: Annotated[str, Query(max_length=500)] = "",
) -> Response:
    if view == "mine":
        assignee = who.username
    filters = CaseFilters(
        case_type=case_type or None, stage=stage or None, queue=queue or None, assignee=assignee or None,
        priority=priority or None, status=status or None, category=category or None, sla_state=sla_state or None,
        text=q.strip() or None,
    )
    rows, next_cursor = service.list_cases(session, filters, limit=PAGE_SIZE, cursor=cursor or None, summary=True)
    names = usernames(session, {c.assignee_id for c in rows if c.assignee_id})
    reg = get_registry()
    params = {"view": view, "queue": queue, "type": case_type, "stage": stage, "priority": priority,
              "sla_state": sla_state, "assignee": assignee if view != "mine" else "", "category": category,
              "status": status, "q": q}
    base = {k: v for k, v in params.items() if v}
    next_url = "/queue?" + urlencode({**base, "cursor": next_cursor}) if next_cursor else None
    stages = sorted({s.name for ct in reg.case_types.values() for s in ct.stages})
    categories: list[str] = []
    for ct in reg.case_types.values():
        for f in ct.fields:
            if f.name == "category" and f.choices:
                categories.extend(c for c in f.choices if c not in categories)
    can_assign = who.has_any(_assign_roles())
    ctx: dict[str, Any] = {
        "rows": [_row(c, names) for c in rows], "next_url": next_url, "params": params, "view": view,
        "first_page_url": "/queue?" + urlencode(base) if cursor else None,
        "case_types": sorted(reg.case_types), "stages": stages, "priorities": PRIORITIES, "sla_states": SLA_STATES,
        "categories": categories, "queues": [qd.name for qd in reg.org.queues], "team_queues": team_queues(who),
        "users": assignable_users(session) if can_assign else [], "can_assign": can_assign,
    }
    return render(request, "queue.html", ctx)


def _assign_roles() -> frozenset[str]:
    from casemgr.web.access import roles_for

    return roles_for("cases.assign")


def _row(case: Case, names: dict[int, str]) -> dict[str, Any]:
    return {"case": case, "assignee": names.get(case.assignee_id or -1)}


def _row_response(request: Request, session: Session, case: Case, who: Principal, error: str | None = None,
                  status_code: int = 200) -> HTMLResponse:
    names = usernames(session, {case.assignee_id} if case.assignee_id else set())
    can_assign = who.has_any(_assign_roles())
    return render(request, "_queue_row.html", {"r": _row(case, names), "can_assign": can_assign,
                                               "users": assignable_users(session) if can_assign else [],
                                               "row_error": error}, status_code=status_code)


def _assign(request: Request, who: Principal, case_id: int, assignee: str | None, version: int) -> Response:
    error: DomainError | None = None
    try:
        # Committed before the row is rendered: what the user sees is what is stored.
        with write_session() as ws:
            service.assign(ws, case_id, assignee, version, actor=who.actor)
    except DomainError as exc:
        if request.headers.get("hx-request") != "true":
            return error_page(request, exc)
        error = exc
    with read_session() as s:
        current = service.get_case(s, case_id)
        # htmx swaps only 2xx by default: a refused change comes back as 200 with the current row and the reason.
        return _row_response(request, s, current, who, error=error.message if error else None)


@router.post("/queue/{case_id}/claim", response_class=HTMLResponse)
def claim(request: Request, case_id: int, who: Assigner, version: Annotated[int, Form(ge=1)]) -> Response:
    return _assign(request, who, case_id, who.username, version)


@router.post("/queue/{case_id}/assign", response_class=HTMLResponse)
def assign(request: Request, case_id: int, who: Assigner, version: Annotated[int, Form(ge=1)],
           assignee: Annotated[str, Form(max_length=100)] = "") -> Response:
    return _assign(request, who, case_id, assignee or None, version)
