"""GET /api/notifications, POST /api/notifications/read, and the bell + list pages (htmx-polled)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from casemgr.db import write_session
from casemgr.errors import PermissionDenied
from casemgr.notifications import service
from casemgr.users.service import Principal
from casemgr.web.deps import ReadSession, WriteSession, page, require
from casemgr.web.pages_common import redirect, render

router = APIRouter(tags=["notifications"])
pages = APIRouter(tags=["pages"], include_in_schema=False)

ApiReader = Annotated[Principal, Depends(require("notifications.read"))]
PageReader = Annotated[Principal, Depends(page("notifications.read"))]


class NotificationOut(BaseModel):
    id: int
    kind: str
    case_id: int | None
    actor: str
    text: str
    created_at: datetime
    read: bool


class NotificationList(BaseModel):
    unread: int
    items: list[NotificationOut]


class ReadIn(BaseModel):
    ids: list[int] | None = Field(default=None, max_length=500, description="omit to mark all read")


class ReadOut(BaseModel):
    marked: int
    unread: int


def _uid(who: Principal) -> int:
    if who.user_id is None:
        raise PermissionDenied("notifications belong to users; this API key has no user")
    return who.user_id


@router.get("/api/notifications", response_model=NotificationList)
def list_notifications(session: ReadSession, who: ApiReader, unread: bool = False,
                       limit: Annotated[int, Query(ge=1, le=200)] = 50) -> NotificationList:
    uid = _uid(who)
    items = [NotificationOut(id=n.id or 0, kind=n.kind, case_id=n.case_id, actor=n.actor, text=n.text,
                             created_at=n.created_at, read=n.read_at is not None)
             for n in service.recent(session, uid, unread_only=unread, limit=limit)]
    return NotificationList(unread=service.unread_count(session, uid), items=items)


@router.post("/api/notifications/read", response_model=ReadOut)
def mark_read(session: WriteSession, who: ApiReader, data: ReadIn | None = None) -> ReadOut:
    uid = _uid(who)
    marked = service.mark_read(session, uid, data.ids if data else None)
    return ReadOut(marked=marked, unread=service.unread_count(session, uid))


@pages.get("/notifications/bell", response_class=HTMLResponse)
def bell(request: Request, session: ReadSession, who: PageReader) -> Response:
    return render(request, "_bell.html", {"unread": service.unread_count(session, _uid(who))})


@pages.get("/notifications", response_class=HTMLResponse)
def notifications_page(request: Request, session: ReadSession, who: PageReader) -> Response:
    uid = _uid(who)
    return render(request, "notifications.html", {"items": service.recent(session, uid, limit=100),
                                                  "unread": service.unread_count(session, uid)})


@pages.post("/notifications/read")
def read_all_page(who: PageReader) -> Response:
    with write_session() as s:
        service.mark_read(s, _uid(who))
    return redirect("/notifications")
