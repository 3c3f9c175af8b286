"""/admin/quarantine (held raw input, reprocess) and /admin/users (users, roles, API keys): role `admin`.
/admin/outbox (outbound mail and its delivery state; the local outbox of demo mode): agents and admins."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select

from casemgr.casetypes.registry import get_registry
from casemgr.db import read_session, write_session
from casemgr.errors import DomainError, ValidationFailed
from casemgr.intake.models import Message, QuarantinedMessage
from casemgr.limits import PREVIEW_CHARS
from casemgr.users import service as users
from casemgr.users.models import ApiKey, User
from casemgr.users.service import Principal
from casemgr.web import integrations
from casemgr.web.deps import page
from casemgr.web.pages_common import redirect, render

router = APIRouter(tags=["pages"], include_in_schema=False)

QuarantineAdmin = Annotated[Principal, Depends(page("quarantine.manage"))]
UserAdmin = Annotated[Principal, Depends(page("users.manage"))]
OutboxReader = Annotated[Principal, Depends(page("outbox.read"))]


# ---------------------------------------------------------------- outbox


@router.get("/admin/outbox", response_class=HTMLResponse)
def outbox_page(request: Request, who: OutboxReader, status: str | None = None) -> Response:
    """Outbound mail, newest first: what sat in the local outbox (no relay configured), failed or was sent."""
    from casemgr.config import get_settings

    with read_session() as s:
        stmt = select(Message).where(Message.direction == "outbound").order_by(Message.id.desc()).limit(200)
        if status in ("outbox", "queued", "sent", "failed"):
            stmt = stmt.where(Message.status == status)
        rows = list(s.execute(stmt).scalars())
    items = [{"m": m, "raw": (m.raw or b"")[:20_000].decode("utf-8", "replace")} for m in rows]
    return render(request, "outbox.html", {"items": items, "status": status,
                                           "relay": get_settings().smtp_relay_host})


# ---------------------------------------------------------------- quarantine


def _quarantine_page(request: Request, *, error: str | None = None, notice: str | None = None,
                     status_code: int = 200) -> HTMLResponse:
    with read_session() as s:
        rows = list(s.execute(select(QuarantinedMessage).order_by(
            QuarantinedMessage.status != "held", QuarantinedMessage.id.desc()).limit(200)).scalars())  # type: ignore[union-attr]
    items = [{"q": q, "size": len(q.raw or b""),
              "preview": (q.raw or b"")[:PREVIEW_CHARS].decode("utf-8", "replace")} for q in rows]
    return render(request, "quarantine.html", {"items": items, "error": error, "notice": notice},
                  status_code=status_code)


@router.get("/admin/quarantine", response_class=HTMLResponse)
def quarantine_page(request: Request, who: QuarantineAdmin, done: str | None = None) -> Response:
    notices = {"reprocess": "Reprocessed.", "discard": "Discarded (the raw input is kept for the record)."}
    return _quarantine_page(request, notice=notices.get(done or ""))


@router.post("/admin/quarantine/{item_id}/reprocess", response_class=HTMLResponse)
def reprocess(request: Request, item_id: int, who: QuarantineAdmin,
              force: Annotated[str, Form(max_length=5)] = "") -> Response:
    try:
        result = integrations.reprocess_quarantined(who, item_id, force=force == "yes")
    except DomainError as exc:
        return _quarantine_page(request, error=f"Item {item_id}: {exc.message}", status_code=exc.status_code)
    status = getattr(result, "status", "")
    if status == "quarantined":
        reason = getattr(result, "reason", "") or "still not processable"
        return _quarantine_page(request, error=f"Item {item_id} is still held: {reason}", status_code=422)
    return redirect("/admin/quarantine?done=reprocess")


@router.post("/admin/quarantine/{item_id}/discard", response_class=HTMLResponse)
def discard(request: Request, item_id: int, who: QuarantineAdmin) -> Response:
    from casemgr.intake.service import discard_quarantined

    try:
        with write_session() as s:
            discard_quarantined(s, item_id, who.actor)
    except DomainError as exc:
        return _quarantine_page(request, error=f"Item {item_id}: {exc.message}", status_code=exc.status_code)
    return redirect("/admin/quarantine?done=discard")


# ---------------------------------------------------------------- users and API keys


def _users_page(request: Request, *, error: str | None = None, notice: str | None = None,
                secret: dict[str, str] | None = None, status_code: int = 200) -> HTMLResponse:
    with read_session() as s:
        people = list(s.execute(select(User).order_by(User.username).limit(1000)).scalars())
        roles = {u.id: users.roles_of(s, u.id or 0) for u in people}
        keys = list(s.execute(select(ApiKey).order_by(ApiKey.id.desc()).limit(500)).scalars())  # type: ignore[union-attr]
    names = {u.id: u.username for u in people}
    ctx: dict[str, Any] = {
        "people": [{"u": u, "roles": roles.get(u.id, [])} for u in people],
        "keys": [{"k": k, "owner": names.get(k.user_id)} for k in keys],
        "all_roles": sorted(get_registry().org.role_names), "error": error, "notice": notice, "secret": secret,
    }
    return render(request, "users.html", ctx, status_code=status_code)


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, who: UserAdmin, done: str | None = None) -> Response:
    notices = {"roles": "Roles saved.", "revoke": "API key revoked."}
    return _users_page(request, notice=notices.get(done or ""))


@router.post("/admin/users", response_class=HTMLResponse)
def create_user(request: Request, who: UserAdmin, username: Annotated[str, Form(max_length=100)],
                roles: Annotated[list[str] | None, Form()] = None,
                password: Annotated[str, Form(max_length=1000)] = "") -> Response:
    pw = password or users.generate_password()
    try:
        with write_session() as s:
            users.create_user(s, username.strip(), pw, list(roles or []), actor=who.actor)
    except DomainError as exc:
        return _users_page(request, error=exc.message, status_code=exc.status_code)
    # Shown once, never stored in clear.
    return _users_page(request, notice=f"User {username.strip()} created.",
                       secret={"label": f"Password for {username.strip()}", "value": pw} if not password else None)


@router.post("/admin/users/{user_id}/roles", response_class=HTMLResponse)
def set_roles(request: Request, user_id: int, who: UserAdmin,
              roles: Annotated[list[str] | None, Form()] = None) -> Response:
    try:
        with write_session() as s:
            users.set_roles(s, user_id, list(roles or []), actor=who.actor, acting_user_id=who.user_id)
    except DomainError as exc:
        return _users_page(request, error=exc.message, status_code=exc.status_code)
    return redirect("/admin/users?done=roles")


@router.post("/admin/api-keys", response_class=HTMLResponse)
def create_key(request: Request, who: UserAdmin, name: Annotated[str, Form(max_length=100)],
               owner: Annotated[str, Form(max_length=100)] = "",
               scopes: Annotated[list[str] | None, Form()] = None) -> Response:
    try:
        with write_session() as s:
            if not name.strip():
                raise ValidationFailed("the key needs a name")
            user_id = None
            if owner:
                u = users.get_user_by_name(s, owner)
                if u is None:
                    raise ValidationFailed(f"unknown user {owner!r}")
                user_id = u.id
            _, secret = users.create_api_key(s, name.strip(), user_id, list(scopes or []), actor=who.actor)
    except DomainError as exc:
        return _users_page(request, error=exc.message, status_code=exc.status_code)
    return _users_page(request, notice=f"API key {name.strip()} created.",
                       secret={"label": f"API key {name.strip()} (copy it now; it is not shown again)", "value": secret})


@router.post("/admin/api-keys/{key_id}/revoke", response_class=HTMLResponse)
def revoke_key(request: Request, key_id: int, who: UserAdmin) -> Response:
    try:
        with write_session() as s:
            users.revoke_api_key(s, key_id, actor=who.actor)
    except DomainError as exc:
        return _users_page(request, error=exc.message, status_code=exc.status_code)
    return redirect("/admin/users?done=revoke")
