"""Rendering helpers shared by the page routers: every page gets `principal` and `csrf_token` in its context."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import pass_context

from casemgr.errors import DomainError
from casemgr.web.deps import csrf_token_of
from casemgr.web.templating import templates


def _fmt_dt(value: Any) -> str:
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M UTC")
    if isinstance(value, str) and len(value) >= 16 and value[4] == "-":
        return value[:16].replace("T", " ") + " UTC"
    return "" if value is None else str(value)


templates.env.filters["dt"] = _fmt_dt


@pass_context
def _sla(context: Any, case: Any) -> Any:
    """`sla(case)`: the live countdown of a case's SLA at render time, in the page's time zone (`tz`)."""
    from casemgr.views.sla_display import UTC, sla_view

    return sla_view(case.status, case.sla_state, case.sla_due_at, case.sla_hours, context.get("tz") or UTC)


@pass_context
def _local_dt(context: Any, value: Any) -> str:
    """`x | local_dt`: an aware datetime in the page's time zone (`tz`), UTC when none is set."""
    from casemgr.views.sla_display import UTC

    if not isinstance(value, datetime):
        return _fmt_dt(value)
    local = value.astimezone(context.get("tz") or UTC)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def _ago(value: Any) -> str:
    """"5 m ago", "3 d ago": how long since `value` (the clock at render time)."""
    from casemgr.clock import now
    from casemgr.views.sla_display import span

    if not isinstance(value, datetime):
        return ""
    return span((now() - value).total_seconds()) + " ago"


templates.env.globals["sla"] = _sla
templates.env.filters["local_dt"] = _local_dt
templates.env.filters["ago"] = _ago


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> HTMLResponse:
    ctx: dict[str, Any] = {"principal": getattr(request.state, "principal", None),
                           "csrf_token": csrf_token_of(request)}
    ctx.update(context or {})
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


def error_page(request: Request, exc: DomainError) -> HTMLResponse:
    titles = {401: "Please log in", 403: "Not allowed", 404: "Not found", 409: "Changed meanwhile",
              413: "Too large", 422: "Check your input", 429: "Too many attempts", 503: "Unavailable"}
    return render(request, "error.html",
                  {"status": exc.status_code, "title": titles.get(exc.status_code, "Error"), "message": exc.message},
                  status_code=exc.status_code)
