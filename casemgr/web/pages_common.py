"""Rendering helpers shared by the page routers: every page gets `principal` and `csrf_token` in its context."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse

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
