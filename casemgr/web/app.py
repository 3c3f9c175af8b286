"""The FastAPI application: routers from each domain room, middleware, error mapping, health."""

from __future__ import annotations

import importlib
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from casemgr import runtime as runtime_module
from casemgr.config import Settings
from casemgr.runtime import Runtime
from casemgr.web import errors
from casemgr.web.deps import AppRuntime, AppSettings
from casemgr.web.templating import STATIC_DIR

# Every router, in ONE list, in matching order: "module" (its `router`) or "module:attribute". Importing must succeed, so a
# broken room stops start-up instead of silently missing its routes.
ROUTERS: tuple[str, ...] = (
    "casemgr.bulk.routes",  # POST /api/cases/bulk (issue 20)
    "casemgr.cases.routes",  # /api/cases
    "casemgr.intake.routes",  # public form + POST /api/intake
    "casemgr.governance.routes",  # AI decisions, review, AI policy
    "casemgr.governance.changes_api",  # change requests: four eyes on policy and rules (issue 21)
    "casemgr.governance.draft_api",  # AI reply drafts: GET draft-reply, POST reply with edit distance (issues 17, 20)
    "casemgr.web.auth_routes",  # web UI (issue 7): login, logout
    "casemgr.web.pages_queue",  # queue page
    "casemgr.web.pages_bulk",  # queue bulk bar, saved-view form, profile (issue 20)
    "casemgr.web.pages_case",  # case page
    "casemgr.web.pages_governance",  # AI policy pages
    "casemgr.web.pages_policy_form",  # the AI policy as a form, built from its schema (issue 21)
    "casemgr.web.pages_review",  # review queue
    "casemgr.web.pages_admin",  # admin pages
    "casemgr.metrics.routes",  # /dashboard, CSV export, /metrics (issue 8)
    "casemgr.conformance.routes",  # /api/conformance (issue 22)
    "casemgr.rootcause.routes",  # /api/root-causes, /dashboard/root-causes.csv (issue 22)
    "casemgr.rules.api",  # /api/rules: validate, simulate, publish, rollback
    "casemgr.views.routes",  # /api/views: saved queue views (issue 20)
    "casemgr.customers.routes",  # /api/customers/{email}/cases (issue 20)
    "casemgr.notifications.routes",  # /api/notifications (issue 20)
    "casemgr.notifications.routes:pages",  # bell + notifications page (issue 20)
    "casemgr.macros.routes",  # /api/macros, POST /api/cases/{id}/macros/{name} (issue 20)
    "casemgr.macros.routes:pages",  # the case page's macro preview (issue 20)
    "casemgr.security.routes",  # /admin/security: the security log (issue 18)
    "casemgr.learning.routes",  # /governance/models, /api/ai/models: candidate models, four-eyes activation (issue 21)
    "casemgr.casetypes.routes",  # model view, /governance/processes: versioned case types and SOPs (issue 22)
)

# Every middleware, in ONE list, innermost first (each one added wraps the ones before it).
MIDDLEWARE: tuple[str, ...] = (
    "casemgr.web.csrf:CSRFMiddleware",
    "casemgr.web.security:SecurityHeadersMiddleware",  # outside CSRF: a CSRF refusal gets the headers too
    "casemgr.web.limits:ConcurrencyLimitMiddleware",  # no thread-pool/connection-pool deadlock under load
    "casemgr.web.bodyread:BodyReadMiddleware",  # the whole body, with a deadline (408), before a slot (issue 18)
    "casemgr.web.limits:BodyLimitMiddleware",  # 413 before any oversized body is parsed (issue 11)
    "casemgr.security.middleware:RefusalLogMiddleware",  # any 403/429 not yet in the security log (issue 18)
    # Outermost: X-Forwarded-For/-Proto believed only from CASEMGR_TRUSTED_PROXIES, so every layer inside
    # (limits, CSRF, rate limits, the security log) sees the real client address and scheme (issue 18).
    "casemgr.web.clientaddr:TrustedProxyMiddleware",
)


def _load(ref: str) -> Any:
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr or "router")


def create_app(settings: Settings | None = None, *, runtime: Runtime | None = None) -> FastAPI:
    """The application with its context (casemgr.runtime) on `app.state.runtime`, installed as the process's.

    `runtime`: use this context; `settings`: build one for them; neither: the process's context (the one its
    entry point or a test fixture built, else one built from the environment now).
    """
    if runtime is None:
        runtime = runtime_module.build(settings) if settings is not None else runtime_module.current()
    runtime_module.install(runtime)
    # Refuse to start on invalid case types (the error names file:line) or an invalid SLA calendar (issue 8).
    runtime.case_types.get()
    runtime.calendar  # noqa: B018 - built now, so a broken file stops start-up
    app = FastAPI(
        title="casemgr",
        version="0.1.0",
        description="Rules-and-AI assisted case management for complaints and contracts.",
        # Served below behind a login unless CASEMGR_PUBLIC_API_DOCS is set (issue 18).
        docs_url=None, redoc_url=None, openapi_url=None,
        # casemgr configures no OpenTelemetry; FastAPI's built-in instrumentation would still ask the global
        # tracer, meter and logger providers on every request whether one appeared (2 % of an API intake's CPU,
        # issue 23 profile).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.runtime = runtime
    errors.install(app)
    _install_docs(app)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    for ref in ROUTERS:
        app.include_router(_load(ref))
    for ref in MIDDLEWARE:
        app.add_middleware(_load(ref))
    from casemgr.worker import install_embedded  # CASEMGR_EMBEDDED_WORKER=1: a worker thread in this process

    install_embedded(app)

    @app.get("/healthz", tags=["ops"])
    def healthz(rt: AppRuntime) -> dict[str, Any]:
        with rt.engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok"}

    return app


def _install_docs(app: FastAPI) -> None:
    """/openapi.json and /docs: they map every route and parameter, so only signed-in users and API keys see
    them, unless settings.public_api_docs says otherwise."""
    from fastapi.openapi.docs import get_swagger_ui_html

    from casemgr.web.deps import current_principal, page_principal

    async def api_reader(request: Request, settings: AppSettings) -> None:
        if not settings.public_api_docs:
            await current_principal(request)

    async def docs_reader(request: Request, settings: AppSettings) -> None:
        if not settings.public_api_docs:
            await page_principal(request)

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(api_reader)])
    async def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(docs_reader)])
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title=f"{app.title} - API")
