"""Form posts of the queue page: the bulk bar (-> casemgr.bulk), saving a view, and the profile's time zone."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError

from casemgr.bulk import service as bulk
from casemgr.bulk.enums import Outcome
from casemgr.bulk.schemas import BulkIn
from casemgr.cases.models import Case
from casemgr.db import read_session, write_session
from casemgr.errors import DomainError, ValidationFailed
from casemgr.users.models import User
from casemgr.users.service import Principal
from casemgr.views import service as views
from casemgr.views.schemas import ViewFilters, ViewIn
from casemgr.views.sla_display import zone
from casemgr.web.deps import page
from casemgr.web.pages_common import error_page, redirect, render
from casemgr.web.pages_queue import parse_refs

router = APIRouter(tags=["pages"], include_in_schema=False)

FILTER_KEYS = ("view", "queue", "type", "stage", "priority", "sla_state", "assignee", "category", "status", "q")
COMMON_ZONES = ("UTC", "Europe/London", "Europe/Berlin", "Europe/Amsterdam", "Europe/Warsaw", "America/New_York",
                "America/Chicago", "America/Denver", "America/Los_Angeles", "Asia/Kolkata", "Asia/Singapore",
                "Asia/Tokyo", "Australia/Sydney")


def _back(back: str, **extra: str) -> str:
    """Only a local /queue URL is a valid place to return to (no open redirect)."""
    parts = urlsplit(back or "/queue")
    path = parts.path if parts.path == "/queue" and not parts.netloc and not parts.scheme else "/queue"
    query = "&".join(p for p in parts.query.split("&") if p and not p.startswith(("notice=", "cursor=", "page=")))
    extra_q = urlencode(extra)
    return path + "?" + "&".join(x for x in (query, extra_q) if x)


@router.post("/queue/bulk")
def bulk_form(request: Request, who: Annotated[Principal, Depends(page("cases.bulk"))],
              action: Annotated[str, Form(max_length=30)], case: Annotated[list[str], Form()] = [],  # noqa: B006
              assignee: Annotated[str, Form(max_length=100)] = "", queue: Annotated[str, Form(max_length=80)] = "",
              priority: Annotated[str, Form(max_length=20)] = "", to_stage: Annotated[str, Form(max_length=50)] = "",
              reason: Annotated[str, Form(max_length=2000)] = "", back: Annotated[str, Form(max_length=2000)] = "",
              resolution_code: Annotated[str, Form(max_length=50)] = "",
              ) -> Response:
    try:
        if not case:
            raise ValidationFailed("select at least one case first")
        params = {"assignee": assignee or None, "queue": queue, "priority": priority, "to_stage": to_stage,
                  "reason": reason, "resolution_code": resolution_code or None}
        try:
            data = BulkIn(action=action, params=params, cases=parse_refs(case))  # type: ignore[arg-type]
        except ValidationError as exc:
            raise ValidationFailed("; ".join(str(e["msg"]) for e in exc.errors())) from None
        with write_session() as s:
            out = bulk.run(s, data, who)
    except DomainError as exc:
        return error_page(request, exc)
    skipped = [r for r in out.results if r.result != Outcome.OK]
    notice = out.summary
    if skipped:
        with read_session() as s:
            refs = {c.id: c.reference for c in (s.get(Case, r.id) for r in skipped[:10]) if c is not None}
        notice += " (" + "; ".join(f"{refs.get(r.id, r.id)}: {r.message}" for r in skipped[:10]) + ")"
    return redirect(_back(back, notice=notice[:1000]))


@router.post("/queue/views")
def save_view(request: Request, who: Annotated[Principal, Depends(page("views.save"))],
              view_name: Annotated[str, Form(max_length=80)], back: Annotated[str, Form(max_length=2000)] = "",
              shared: Annotated[str, Form(max_length=5)] = "") -> Response:
    from urllib.parse import parse_qs

    qs = parse_qs(urlsplit(back).query)
    filters = {k: qs[k][0] for k in FILTER_KEYS if qs.get(k) and qs[k][0]}
    sort = (qs.get("sort") or ["sla"])[0]
    try:
        try:
            data = ViewIn(name=view_name.strip() or "?", filters=ViewFilters(**filters), sort=sort,  # type: ignore[arg-type]
                          shared=shared == "yes")
        except ValidationError as exc:
            raise ValidationFailed("; ".join(str(e["msg"]) for e in exc.errors())) from None
        with write_session() as s:
            v = views.create(s, who, data)
            url = views.url_of(v)
    except DomainError as exc:
        return error_page(request, exc)
    return redirect(url)


@router.get("/profile", response_class=HTMLResponse)
def profile(request: Request, who: Annotated[Principal, Depends(page("profile.edit"))], saved: str = "") -> Response:
    with read_session() as s:
        user = s.get(User, who.user_id) if who.user_id else None
        tz = user.time_zone if user else None
    return render(request, "profile.html", {"time_zone": tz or "UTC", "zones": COMMON_ZONES, "saved": bool(saved),
                                            "tz": zone(tz)})


@router.post("/profile")
def save_profile(request: Request, who: Annotated[Principal, Depends(page("profile.edit"))],
                 time_zone: Annotated[str, Form(max_length=64)]) -> Response:
    from zoneinfo import available_timezones

    name = time_zone.strip()
    if name not in available_timezones() and name != "UTC":
        return error_page(request, ValidationFailed(f"unknown time zone {name[:64]!r}; use an IANA name such as "
                                                    "Europe/Berlin"))
    with write_session() as s:
        user = s.get(User, who.user_id) if who.user_id else None
        if user is None:
            return error_page(request, ValidationFailed("this login has no user profile"))
        user.time_zone = None if name == "UTC" else name
        s.add(user)
    return redirect("/profile?saved=1")
