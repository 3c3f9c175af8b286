"""/admin/security (the security log) and /admin/security.csv (its export). Role `admin`."""

from __future__ import annotations

import io
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response

from casemgr.clock import now
from casemgr.db import read_session
from casemgr.security import service
from casemgr.security.enums import SecurityEventKind
from casemgr.users.service import Principal
from casemgr.web.deps import page
from casemgr.web.pages_common import render

router = APIRouter(tags=["pages"], include_in_schema=False)
SecurityAdmin = Annotated[Principal, Depends(page("security.read"))]


@router.get("/admin/security", response_class=HTMLResponse)
def security_page(request: Request, who: SecurityAdmin,
                  kind: Annotated[str, Query(max_length=40)] = "") -> Response:
    kinds = [k.value for k in SecurityEventKind]
    with read_session() as s:
        rows = service.recent(s, limit=500, kind=kind if kind in kinds else None)
    return render(request, "security.html", {"rows": rows, "kinds": kinds, "kind": kind})


@router.get("/admin/security.csv")
def security_csv(request: Request, who: SecurityAdmin,
                 days: Annotated[int, Query(ge=1, le=3650)] = 30) -> Response:
    out = io.StringIO()
    with read_session() as s:
        service.export_csv(s, out, since=now() - timedelta(days=days))
    return Response(out.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="security-log.csv"'})
