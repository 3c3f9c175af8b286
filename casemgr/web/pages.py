"""Mounts the web UI: security middlewares and the page routers (one call from create_app)."""

from __future__ import annotations

from fastapi import FastAPI

from casemgr.web.security import CSRFMiddleware, SecurityHeadersMiddleware


def install(app: FastAPI) -> None:
    from casemgr.web import auth_routes, pages_admin, pages_case, pages_governance, pages_queue, pages_review

    # Added last = outermost: the CSRF refusal gets the security headers too.
    app.add_middleware(CSRFMiddleware)
    app.add_middleware(SecurityHeadersMiddleware)
    for module in (auth_routes, pages_queue, pages_case, pages_governance, pages_review, pages_admin):
        app.include_router(module.router)
