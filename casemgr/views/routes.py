"""GET/POST/DELETE /api/views: saved queue views (personal for everyone, shared for leads)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from casemgr.users.service import Principal
from casemgr.views import service
from casemgr.views.schemas import ViewIn, ViewOut
from casemgr.web.deps import ReadSession, WriteSession, require
from casemgr.web.pages_queue import usernames
from casemgr.web.paging import Page

router = APIRouter(prefix="/api", tags=["views"])


@router.get("/views", response_model=list[ViewOut])
def list_views(session: ReadSession, who: Annotated[Principal, Depends(require("views.read"))],
               page: Page) -> list[ViewOut]:
    views = service.visible(session, who)[page.offset:page.offset + page.limit]  # shared views are not capped
    owners = usernames(session, {v.owner_id for v in views if v.owner_id})
    return [service.out(v, owners) for v in views]


@router.post("/views", response_model=ViewOut, status_code=201)
def create_view(data: ViewIn, session: WriteSession,
                who: Annotated[Principal, Depends(require("views.save"))]) -> ViewOut:
    v = service.create(session, who, data)
    return service.out(v, {who.user_id: who.username} if who.user_id else {})


@router.delete("/views/{view_id}", status_code=204)
def delete_view(view_id: int, session: WriteSession,
                who: Annotated[Principal, Depends(require("views.save"))]) -> Response:
    service.delete(session, who, view_id)
    return Response(status_code=204)
