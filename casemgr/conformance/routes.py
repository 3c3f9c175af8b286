"""GET /api/conformance: the dashboard's conformance figures as JSON (lead, admin)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from casemgr.conformance import service
from casemgr.errors import ValidationFailed
from casemgr.users.service import Principal
from casemgr.web.deps import ReadSession, require

router = APIRouter(tags=["dashboard"])
LeadApi = Annotated[Principal, Depends(require("dashboard.read"))]


def check_type(case_type: str) -> str | None:
    from casemgr.casetypes.registry import get_registry

    if case_type and case_type not in get_registry().case_types:
        raise ValidationFailed(f"unknown case type {case_type!r}; known: {', '.join(sorted(get_registry().case_types))}",
                               field="type")
    return case_type or None


@router.get("/api/conformance")
def conformance_json(session: ReadSession, who: LeadApi,
                     case_type: Annotated[str, Query(alias="type", max_length=50)] = "") -> dict[str, Any]:
    """As of the last refresh (worker job `conformance.refresh`); `casemgr export conformance --json` computes now."""
    return service.snapshot(session, check_type(case_type))
