"""POST /api/cases/bulk: one action over many cases, one result per case (always 200 for a well-formed call)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from casemgr.bulk import service
from casemgr.bulk.schemas import BulkIn, BulkOut
from casemgr.users.service import Principal
from casemgr.web.deps import WriteSession, require

router = APIRouter(prefix="/api", tags=["cases"])


@router.post("/cases/bulk", response_model=BulkOut)
def bulk(data: BulkIn, session: WriteSession, who: Annotated[Principal, Depends(require("cases.bulk"))]) -> BulkOut:
    """Apply `action` to every case under its own version check. Results: ok / conflict (changed by someone
    else: nothing overwritten) / forbidden / invalid, each with a message."""
    return service.run(session, data, who)
