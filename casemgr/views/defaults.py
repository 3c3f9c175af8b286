"""The default queue views (New, My open, Waiting, Due today, Breached, one per queue) and their counts.

Every count is a COUNT over an indexed predicate on open cases (ix_cases_status_* indexes), stopped at
TAB_COUNT_CAP (shown as "1,000+"): all tabs are one statement whose cost is bounded, whatever the table
size. Due today and Breached read the due time against the clock at request time: never the sla_state a worker
scan last wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from casemgr.cases.enums import CaseStatus
from casemgr.cases.schemas import CaseFilters
from casemgr.casetypes.registry import get_registry
from casemgr.clock import now
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


def tabs(session: Session, who: Principal, tz: ZoneInfo) -> list[ViewTab]:
    """Every tab with its capped count, all counted in one statement."""
    at = now()
    views = [DefaultView.NEW, DefaultView.MINE, DefaultView.WAITING, DefaultView.DUE_TODAY, DefaultView.BREACHED,
             DefaultView.ALL]
    queries = {v.value: query_for(v, who, tz, at) for v in views}
    names = queue_names(who)
    queries.update({f"queue:{name}": query_for(f"queue:{name}", who, tz, at) for name in names})
    n = listing.counts(session, queries, TAB_COUNT_CAP)
    out = [ViewTab(v.value, LABELS[v], n[v.value]) for v in views]
    out += [ViewTab(f"queue:{name}", name, n[f"queue:{name}"]) for name in names]
    return out
