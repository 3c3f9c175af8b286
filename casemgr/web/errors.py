"""Domain errors become HTTP responses here, in one place, each with a clear message."""

from __future__ import annotations

import logging
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy.exc import DataError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from casemgr.errors import DomainError, PermissionDenied, RateLimited, Unauthenticated, ValidationFailed
from casemgr.policyfile import PolicyFileError

log = logging.getLogger(__name__)


def wants_html(request: Request) -> bool:
    if request.url.path.startswith("/api") or request.url.path.startswith("/metrics"):
        return False
    return "text/html" in request.headers.get("accept", "")


async def _log_refusal(request: Request, exc: DomainError) -> None:
    """403s and 429s go to the security log with who asked, from where, for what (issue 18)."""
    from casemgr.security.enums import SecurityEventKind
    from casemgr.security.middleware import mark_logged
    from casemgr.security.service import record_async

    mark_logged(request.state)
    principal = getattr(request.state, "principal", None)
    kind = SecurityEventKind.ACCESS_DENIED if isinstance(exc, PermissionDenied) else SecurityEventKind.RATE_LIMITED
    await record_async(kind, client=request.client.host if request.client else "unknown",
                       username=principal.actor if principal is not None else None,
                       path=f"{request.method} {request.url.path}", detail=exc.message[:200],
                       actor=principal.actor if principal is not None else None)


def install(app: FastAPI) -> None:
    @app.exception_handler(DomainError)
    async def _domain(request: Request, exc: DomainError) -> Response:
        if isinstance(exc, PermissionDenied | RateLimited):
            await _log_refusal(request, exc)
        if isinstance(exc, Unauthenticated) and (wants_html(request) or exc.details.get("login_redirect")):
            return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
        if wants_html(request) and not request.url.path.startswith("/api"):
            from casemgr.web.pages_common import error_page  # HTML error page for browser requests

            return error_page(request, exc)
        body = {"error": exc.code, "detail": exc.message, **{k: v for k, v in exc.details.items() if v is not None}}
        return JSONResponse(body, status_code=exc.status_code)

    @app.exception_handler(PolicyFileError)
    async def _policy_file(request: Request, exc: PolicyFileError) -> Response:
        # An invalid candidate document (case types, rules, policy) that a route did not turn into its own answer:
        # the client's error, with every problem at file:line, never a 500.
        err = ValidationFailed("; ".join(str(p) for p in exc.problems[:5]) or "invalid document",
                               problems=[p.as_dict() for p in exc.problems])
        return await _domain(request, err)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = []
        for err in exc.errors():
            loc = ".".join(str(x) for x in err.get("loc", ()) if x != "body")
            errors.append({"field": loc, "message": err.get("msg", "invalid")})
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors[:5])
        return JSONResponse({"error": "validation_failed", "detail": summary or "invalid request", "errors": errors},
                            status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return JSONResponse({"error": "http_error", "detail": detail}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    async def _out_of_range(request: Request, exc: Exception) -> JSONResponse:
        # A number too large for a 64-bit column (e.g. /api/cases/99999999999999999999) is the client's error.
        return JSONResponse({"error": "validation_failed",
                             "detail": "a value in the request is out of range (ids and numbers must fit in 64 bits)"},
                            status_code=422)

    app.add_exception_handler(OverflowError, _out_of_range)
    app.add_exception_handler(DataError, _out_of_range)

    @app.exception_handler(OperationalError)
    async def _db_down(request: Request, exc: OperationalError) -> JSONResponse:
        # Locked or unreachable database: tell the client to retry; nothing was committed.
        log.warning("database unavailable: %s", exc)
        return JSONResponse({"error": "unavailable", "detail": "the database is busy or unavailable; please retry"},
                            status_code=503, headers={"Retry-After": "5"})
