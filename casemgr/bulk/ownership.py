"""Who owns a case: claim takes only an unassigned case; taking one from a colleague needs the lead role or
an explicit take-over, and the previous owner is told (so "My open" is never a surprise)."""

from __future__ import annotations

from sqlmodel import Session

from casemgr.cases import service
from casemgr.cases.models import Case
from casemgr.errors import Conflict, PermissionDenied
from casemgr.notifications.enums import NotificationKind
from casemgr.notifications.service import notify
from casemgr.users.models import User
from casemgr.users.service import Principal

REASSIGN_ROLES = frozenset({"lead", "admin"})


def owner_name(session: Session, case: Case) -> str | None:
    if case.assignee_id is None:
        return None
    u = session.get(User, case.assignee_id)
    return u.username if u else None


def _tell_previous_owner(session: Session, case: Case, previous_id: int, who: Principal, new_owner: str | None) -> None:
    if previous_id == who.user_id:
        return
    to = f"to {new_owner}" if new_owner else "and left unassigned"
    notify(session, previous_id, NotificationKind.TAKEN_OVER,
           f"{who.username} took {case.reference or case.id} ({case.subject[:80]}) from you {to}",
           case_id=case.id, actor=who.actor)


def claim(session: Session, case_id: int, version: int, who: Principal, *, take_over: bool = False) -> Case:
    """Assign the case to the caller. Refused (409) when someone else owns it, unless `take_over` is set (an
    explicit confirmation) or the caller is a lead; the previous owner is notified then."""
    case = service.get_case(session, case_id)
    previous = case.assignee_id
    if previous is not None and previous == who.user_id:
        return case  # already mine: nothing changes, no version bump
    if previous is not None and not (take_over or who.has_any(REASSIGN_ROLES)):
        owner = owner_name(session, case) or "someone else"
        raise Conflict(f"{case.reference or case_id} is assigned to {owner}; take it over to claim it",
                       assignee=owner)
    case = service.assign(session, case_id, who.username, version, actor=who.actor)
    if previous is not None:
        _tell_previous_owner(session, case, previous, who, who.username)
    return case


def assign(session: Session, case_id: int, version: int, who: Principal, assignee: str | None) -> Case:
    """Assign to anyone (or nobody). Moving a case away from a colleague other than the caller needs the lead
    role (agents take it over instead); the previous owner is notified."""
    case = service.get_case(session, case_id)
    previous = case.assignee_id
    current = owner_name(session, case)
    if previous is not None and current != assignee and previous != who.user_id and not who.has_any(REASSIGN_ROLES):
        raise PermissionDenied(f"{case.reference or case_id} belongs to {current}; only a lead can reassign it "
                               "(or take it over yourself)")
    case = service.assign(session, case_id, assignee, version, actor=who.actor)
    if previous is not None and current != assignee:
        _tell_previous_owner(session, case, previous, who, assignee)
    return case
