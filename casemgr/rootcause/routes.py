"""GET /api/root-causes (JSON) and /dashboard/root-causes.csv (the product owner's export): lead, admin."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response

from casemgr.errors import ValidationFailed
from casemgr.rootcause.csvexport import csv_text
from casemgr.rootcause.report import report
from casemgr.users.service import Principal
from casemgr.web.deps import ReadSession, page, require

router = APIRouter(tags=["dashboard"])
LeadApi = Annotated[Principal, Depends(require("dashboard.read"))]
Lead = Annotated[Principal, Depends(page("dashboard.read"))]
PERIODS = (7, 30, 90, 365)


def _params(days: int, case_type: str) -> tuple[int, str | None]:
    from casemgr.casetypes.registry import get_registry

    if days not in PERIODS:
        raise ValidationFailed(f"days must be one of {', '.join(map(str, PERIODS))}", field="days")
    if case_type and case_type not in get_registry().case_types:
        raise ValidationFailed(f"unknown case type {case_type!r}; known: {', '.join(sorted(get_registry().case_types))}",
                               field="type")
    return days, case_type or None


@router.get("/api/root-causes")
def root_causes(session: ReadSession, who: LeadApi, days: Annotated[int, Query()] = 30,
                case_type: Annotated[str, Query(alias="type", max_length=50)] = "") -> dict[str, Any]:
    """Confirmed resolution codes of cases closed in the last `days` days against the days before: causes, recurring
    causes by product / issue (AI classification) / queue, weekly trend, top movers."""
    d, ct = _params(days, case_type)
    return report(session, days=d, case_type=ct)


@router.get("/dashboard/root-causes.csv", include_in_schema=False)
def root_causes_csv(session: ReadSession, who: Lead, days: Annotated[int, Query()] = 30,
                    case_type: Annotated[str, Query(alias="type", max_length=50)] = "") -> Response:
    d, ct = _params(days, case_type)
    body = csv_text(session, days=d, case_type=ct)
    name = f"root-causes-{ct or 'all'}-{d}d.csv"
    return Response(body, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
