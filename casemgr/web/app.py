"""The FastAPI application: routers from each domain room, error mapping, health."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from casemgr.casetypes.registry import get_registry
from casemgr.db import get_engine
from casemgr.web import errors
from casemgr.web.templating import STATIC_DIR


def create_app() -> FastAPI:
    # Refuse to start on invalid case types: the error names file:line.
    get_registry()
    from casemgr.sla.calendar import get_calendar  # and on an invalid SLA calendar (issue 8)

    get_calendar()
    app = FastAPI(
        title="casemgr",
        version="0.1.0",
        description="Rules-and-AI assisted case management for complaints and contracts.",
    )
    errors.install(app)

    from casemgr.cases.routes import router as cases_router

    app.include_router(cases_router)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
    # Rooms register their routers below (one line each).
    from casemgr.intake.routes import router as intake_router  # noqa: E402 - public form + POST /api/intake

    app.include_router(intake_router)
    from casemgr.governance.routes import router as governance_router  # AI decisions, review, AI policy

    app.include_router(governance_router)
    from casemgr.web import pages  # web UI (issue 7): login, queue, case, governance, review, admin pages

    pages.install(app)
    from casemgr.metrics.routes import router as metrics_router  # /dashboard, CSV export, /metrics (issue 8)

    app.include_router(metrics_router)
    from casemgr.worker import install_embedded  # CASEMGR_EMBEDDED_WORKER=1: a worker thread in this process

    install_embedded(app)
    from casemgr.web.limits import BodyLimitMiddleware, ConcurrencyLimitMiddleware  # issue 11

    app.add_middleware(BodyLimitMiddleware)  # 413 before any oversized body is parsed
    app.add_middleware(ConcurrencyLimitMiddleware)  # no thread-pool/connection-pool deadlock under load
    from casemgr.rules.api import router as rules_router  # /api/rules: validate, simulate, publish, rollback

    app.include_router(rules_router)

    @app.get("/healthz", tags=["ops"])
    def healthz() -> dict[str, Any]:
        with get_engine().connect() as conn:
            conn.execute(text("SELECT 1"))
        return {"status": "ok"}

    return app
