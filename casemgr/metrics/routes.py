"""/dashboard (lead, admin), CSV export of each dashboard table, and /metrics in Prometheus text format."""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from casemgr import csvsafe
from casemgr.errors import NotFound, ValidationFailed
from casemgr.metrics import charts, service
from casemgr.metrics.prometheus import render_metrics
from casemgr.users.service import Principal
from casemgr.web.deps import ReadSession, page, require

router = APIRouter(tags=["dashboard"])
Lead = Annotated[Principal, Depends(page("dashboard.read"))]
LeadApi = Annotated[Principal, Depends(require("dashboard.read"))]
PERIODS = service.PERIODS


def _params(days: int, case_type: str) -> tuple[int, str | None]:
    from casemgr.casetypes.registry import get_registry

    if days not in PERIODS:
        raise ValidationFailed(f"days must be one of {', '.join(map(str, PERIODS))}", field="days")
    if case_type and case_type not in get_registry().case_types:
        raise ValidationFailed(f"unknown case type {case_type!r}", field="type")
    return days, case_type or None


@router.get("/dashboard", response_class=HTMLResponse, include_in_schema=False)
def dashboard_page(request: Request, session: ReadSession, who: Lead,
                   days: Annotated[int, Query()] = 30,
                   case_type: Annotated[str, Query(alias="type", max_length=50)] = "") -> Response:
    from casemgr.casetypes.registry import get_registry
    from casemgr.web.pages_common import render

    days, ct = _params(days, case_type)
    data = service.dashboard(session, days=days, case_type=ct)
    imgs = {
        "backlog": charts.backlog_chart(data["backlog_by_stage"]) if data["backlog_by_stage"] else None,
        "cycle": charts.cycle_chart(data["cycle_time"]) if data["cycle_time"] else None,
        "trend": charts.trend_chart(data["breach_trend"]) if data["breach_trend"] else None,
    }
    from casemgr.conformance.service import snapshot as conformance  # issue 22: conformance per case type
    from casemgr.governance.policy_review import review_state  # issue 21: "overdue for review" on the dashboard
    from casemgr.rootcause.report import report as root_causes  # issue 22: complaint root causes

    return render(request, "dashboard.html", {"d": data, "charts": imgs, "periods": PERIODS, "days": days,
                                              "case_type": ct or "", "case_types": sorted(get_registry().case_types),
                                              "policy_review": review_state(session),
                                              "conformance": conformance(session, ct),
                                              "rc": root_causes(session, days=days, case_type=ct)})


@router.get("/api/dashboard")
def dashboard_json(session: ReadSession, who: LeadApi, days: Annotated[int, Query()] = 30,
                   case_type: Annotated[str, Query(alias="type", max_length=50)] = "") -> dict:  # type: ignore[type-arg]
    days, ct = _params(days, case_type)
    return service.dashboard(session, days=days, case_type=ct)


@router.get("/dashboard/export.csv", include_in_schema=False)
def dashboard_csv(session: ReadSession, who: Lead, table: Annotated[str, Query(max_length=40)] = "cycle_time",
                  days: Annotated[int, Query()] = 30,
                  case_type: Annotated[str, Query(alias="type", max_length=50)] = "") -> Response:
    if table not in service.TABLES:
        raise NotFound(f"no dashboard table {table!r}; tables: {', '.join(service.TABLES)}")
    days, ct = _params(days, case_type)
    rows = service.table_rows(service.dashboard(session, days=days, case_type=ct), table)
    buf = io.StringIO()
    if rows:
        writer = csvsafe.DictWriter(buf, fieldnames=list(rows[0].keys()), extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)  # formulas neutralised (casemgr.csvsafe)
    name = f"{table}-{ct or 'all'}-{days}d.csv"
    return Response(buf.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/metrics", include_in_schema=False)
def metrics(session: ReadSession, who: Lead) -> Response:
    """Prometheus scrapes with an API key of a lead/admin user (`Authorization: Bearer <key>`)."""
    body, content_type = render_metrics(session)
    return Response(body, media_type=content_type)
