"""Saved views: agents keep personal views, leads also save shared ones."""

from __future__ import annotations

from urllib.parse import urlencode

from sqlalchemy import bindparam, or_, select
from sqlmodel import Session, col

from casemgr.errors import Conflict, NotFound, PermissionDenied
from casemgr.users.service import Principal
from casemgr.views.models import SavedView
from casemgr.views.schemas import ViewIn, ViewOut
from casemgr.web.access import roles_for

MAX_VIEWS_PER_USER = 50


_OWNER = col(SavedView.owner_id)
# Built once: the queue page lists these on every load.
_VISIBLE = (select(SavedView).where(or_(_OWNER.is_(None), _OWNER == bindparam("user_id")))
            .order_by(_OWNER.is_(None), col(SavedView.name), col(SavedView.id)))


def visible(session: Session, who: Principal) -> list[SavedView]:
    return list(session.execute(_VISIBLE, {"user_id": who.user_id}).scalars())


def url_of(v: SavedView) -> str:
    params = {k: val for k, val in (v.filters or {}).items() if val}
    return "/queue?" + urlencode({**params, "sort": v.sort, "saved": v.id})


def out(v: SavedView, owners: dict[int, str] | None = None) -> ViewOut:
    assert v.id is not None
    return ViewOut(id=v.id, name=v.name, filters={k: str(x) for k, x in (v.filters or {}).items() if x},
                   sort=v.sort, shared=v.owner_id is None,  # type: ignore[arg-type]
                   owner=None if v.owner_id is None else (owners or {}).get(v.owner_id), created_at=v.created_at,
                   url=url_of(v))


def create(session: Session, who: Principal, data: ViewIn) -> SavedView:
    if who.user_id is None:
        raise PermissionDenied("saved views belong to users; this API key has no user")
    if data.shared and not who.has_any(roles_for("views.share")):
        raise PermissionDenied("only leads save shared views; save it as a personal view")
    owner = None if data.shared else who.user_id
    dup = session.execute(select(col(SavedView.id)).where(
        col(SavedView.name) == data.name,
        col(SavedView.owner_id).is_(None) if owner is None else col(SavedView.owner_id) == owner)).first()
    if dup:
        raise Conflict(f"a {'shared' if owner is None else 'personal'} view named {data.name!r} exists already")
    mine = session.execute(select(col(SavedView.id)).where(col(SavedView.owner_id) == who.user_id)).all()
    if owner is not None and len(mine) >= MAX_VIEWS_PER_USER:
        raise Conflict(f"you have {MAX_VIEWS_PER_USER} saved views; delete one first")
    v = SavedView(name=data.name.strip(), owner_id=owner, filters=data.filters.model_dump(exclude_none=True),
                  sort=data.sort.value, created_by=who.actor)
    session.add(v)
    session.flush()
    return v


def delete(session: Session, who: Principal, view_id: int) -> None:
    v = session.get(SavedView, view_id)
    if v is None or (v.owner_id is not None and v.owner_id != who.user_id):
        raise NotFound(f"view {view_id} not found")
    if v.owner_id is None and not who.has_any(roles_for("views.share")):
        raise PermissionDenied("only leads delete shared views")
    session.delete(v)
