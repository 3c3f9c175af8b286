"""The default queue views (New, My open, Waiting, Due today, Breached, one per queue) and their counts.

Every count is a COUNT over an indexed predicate on open cases (ix_cases_status_* indexes), stopped at
TAB_COUNT_CAP (shown as "1,000+"): all tabs are one statement whose cost is bounded, whatever the table
size. Due today and Breached read the due time against the clock at request time: never the sla_state a worker
scan last wrote.

The tab bar is on every queue page: its statement is built once per set of queues (`_tabs_statement`, bound
parameters only) and run with the request's values. Built per request from `query_for` + `listing.conditions`,
the 10-30-part UNION cost ~5 ms of CPU in SQLAlchemy for ~1 ms of SQL (issue 23 profile at 1M cases);
tests/workspace/test_queue_cpu.py checks that every tab counts what its view lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, bindparam, select, union_all
from sqlmodel import Session, col

from casemgr.cases.enums import CaseStatus
from casemgr.cases.models import Case
from casemgr.cases.schemas import CaseFilters
from casemgr.casetypes.registry import get_registry
from casemgr.clock import now
from casemgr.users.models import User
from casemgr.users.service import Principal
from casemgr.views import listing
from casemgr.views.enums import DefaultView

LABELS = {DefaultView.NEW: "New / unassigned", DefaultView.MINE: "My open", DefaultView.WAITING: "Waiting on customer",
          DefaultView.DUE_TODAY: "Due today", DefaultView.BREACHED: "Breached", DefaultView.ALL: "All open"}


TAB_COUNT_CAP = 1_000


@dataclass(frozen=True)
class ViewTab:
    key: str  # a DefaultView value, or "queue:<name>"
    label: str
    count: int  # TAB_COUNT_CAP + 1 means "more than the cap"

    @property
    def capped(self) -> bool:
        return self.count > TAB_COUNT_CAP

    @property
    def count_text(self) -> str:
        return listing.count_text(self.count, TAB_COUNT_CAP)


def end_of_today(at: datetime, tz: ZoneInfo) -> datetime:
    local = at.astimezone(tz)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=tz).astimezone(at.tzinfo)


def query_for(view: str, who: Principal, tz: ZoneInfo, at: datetime | None = None) -> listing.CaseQuery:
    """The CaseQuery of a default view; an unknown key means all open cases."""
    at = at or now()
    open_ = CaseFilters(status=CaseStatus.OPEN)
    if view.startswith("queue:"):
        return listing.CaseQuery(filters=CaseFilters(status=CaseStatus.OPEN, queue=view[6:]))
    match view:
        case DefaultView.NEW:
            return listing.CaseQuery(filters=open_, unassigned=True)
        case DefaultView.MINE:
            return listing.CaseQuery(filters=CaseFilters(status=CaseStatus.OPEN, assignee=who.username))
        case DefaultView.WAITING:
            return listing.CaseQuery(filters=open_, waiting=True)
        case DefaultView.DUE_TODAY:
            return listing.CaseQuery(filters=open_, due_after=at, due_before=end_of_today(at, tz))
        case DefaultView.BREACHED:
            return listing.CaseQuery(filters=open_, due_before=at)
    return listing.CaseQuery(filters=open_)


def queue_names(who: Principal) -> list[str]:
    """The queues of the caller's roles; leads and admins see every queue."""
    org = get_registry().org
    if who.has_any(frozenset({"lead", "admin"})):
        return [q.name for q in org.queues]
    return [q.name for q in org.queues if q.owner_role in who.roles]


VIEWS = (DefaultView.NEW, DefaultView.MINE, DefaultView.WAITING, DefaultView.DUE_TODAY, DefaultView.BREACHED,
         DefaultView.ALL)


def _view_terms(sqlite: bool) -> dict[str, list[ColumnElement[bool]]]:
    """The terms `query_for` + `listing.conditions` give each default view besides the open status (likelihood
    hints on SQLite included), with bound values (:me, :at, :end_of_today), written once so statements built
    from them can be reused."""
    due = col(Case.sla_due_at)
    return {
        DefaultView.NEW: [col(Case.assignee_id).is_(None)],
        DefaultView.MINE: [listing.rare(col(Case.assignee_id) == bindparam("me"), sqlite)],
        DefaultView.WAITING: [listing.rare(col(Case.waiting_on_customer).is_(True), sqlite)],
        DefaultView.DUE_TODAY: [due > bindparam("at"), due <= bindparam("end_of_today")],
        DefaultView.BREACHED: [due <= bindparam("at")],
        DefaultView.ALL: [],
    }


def _queue_term(i: int) -> list[ColumnElement[bool]]:
    return [col(Case.queue) == bindparam(f"queue_{i}")]


@lru_cache(maxsize=64)
def _tabs_statement(dialect: str, names: tuple[str, ...]) -> Any:
    """The capped counts of every default view and of the queues `names`, as one UNION ALL with bound values
    (:open, :me, :at, :end_of_today, :queue_<i>, :cap)."""
    terms = _view_terms(dialect == "sqlite")
    terms.update({f"queue:{i}": _queue_term(i) for i in range(len(names))})
    open_ = col(Case.status) == bindparam("open")
    return union_all(*(listing.capped_count([open_, *where], bindparam("cap"), key) for key, where in terms.items()))


@lru_cache(maxsize=32)
def _view_count_statement(dialect: str, key: str) -> Any:
    """The capped count of one default view (`key`: a DefaultView value, or "queue" for :queue_0)."""
    where = _queue_term(0) if key == "queue" else _view_terms(dialect == "sqlite")[key]
    return listing.capped_count([col(Case.status) == bindparam("open"), *where], bindparam("cap"), key)


def _params(session: Session, who: Principal, tz: ZoneInfo, names: list[str], cap: int) -> dict[str, Any]:
    at = now()
    params: dict[str, Any] = {"open": CaseStatus.OPEN.value, "me": _my_id(session, who), "at": at,
                              "end_of_today": end_of_today(at, tz), "cap": cap + 1}
    params.update({f"queue_{i}": name for i, name in enumerate(names)})
    return params


def _my_id(session: Session, who: Principal) -> int:
    """The assignee id of "My open": the caller's user; a key without a user is looked up by its name, as the
    view's own filter (`assignee=username`) does."""
    if who.user_id is not None:
        return who.user_id
    uid = session.execute(select(col(User.id)).where(col(User.username) == who.username)).scalar_one_or_none()
    return uid if uid is not None else -1


def tabs(session: Session, who: Principal, tz: ZoneInfo) -> list[ViewTab]:
    """Every tab with its capped count, all counted in one statement."""
    names = queue_names(who)
    stmt = _tabs_statement(session.get_bind().dialect.name, tuple(names))
    params = _params(session, who, tz, names, TAB_COUNT_CAP)
    n = {str(k): int(v) for k, v in session.execute(stmt, params).all()}
    out = [ViewTab(v.value, LABELS[v], n[v.value]) for v in VIEWS]
    out += [ViewTab(f"queue:{name}", name, n[f"queue:{i}"]) for i, name in enumerate(names)]
    return out


def view_count(session: Session, who: Principal, tz: ZoneInfo, view: str, cap: int) -> int:
    """The count of a default view or a queue view up to `cap` + 1, as listing.count(query_for(view)) counts it
    (the page total of a view whose tab reached TAB_COUNT_CAP), from a statement built once per view."""
    if view.startswith("queue:"):
        key, names = "queue", [view[6:]]
    else:
        key, names = (view if view in LABELS else DefaultView.ALL.value), []
    stmt = _view_count_statement(session.get_bind().dialect.name, key)
    return int(session.execute(stmt, _params(session, who, tz, names, cap)).one()[1])
