"""Keyset-paged case lists in four sort orders, with a total count, that stay fast at 1M cases.

No sort uses OFFSET or an ORDER BY over an expression: each order is a list of *segments* (a condition plus
an index-ordered ORDER BY), read one after the other. SLA due order is "cases with a due time by (due, id),
then the rest by id"; priority order is the SLA order within urgent, then high, normal, low. The cursor says
which segment a page continues in and the last row's sort key, so the next page is one range read.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, true
from sqlalchemy.orm import defer
from sqlmodel import Session, col

from casemgr.cases import cursor as cursor_codec
from casemgr.cases.enums import Priority
from casemgr.cases.models import Case, Party
from casemgr.cases.schemas import CaseFilters
from casemgr.users.models import User
from casemgr.views.enums import SortKey

PRIORITY_ORDER = tuple(reversed(Priority.values()))  # most urgent first
LIST_VIEW_DEFERRED = ("description", "fields", "tags", "ai", "contract", "rules_result")


@dataclass
class CaseQuery:
    """What a queue page lists: the usual filters plus the conditions of the default views."""

    filters: CaseFilters = field(default_factory=CaseFilters)
    unassigned: bool = False
    waiting: bool | None = None
    due_after: datetime | None = None  # sla_due_at > due_after
    due_before: datetime | None = None  # sla_due_at <= due_before
    customer_email: str | None = None


def conditions(session: Session, q: CaseQuery) -> list[ColumnElement[bool]]:
    f = q.filters
    out: list[ColumnElement[bool]] = []
    for column, value in ((Case.case_type, f.case_type), (Case.stage, f.stage), (Case.queue, f.queue),
                          (Case.priority, f.priority), (Case.status, f.status), (Case.category, f.category),
                          (Case.sla_state, f.sla_state)):
        if value:
            out.append(col(column) == value)
    if q.unassigned or f.assignee == "none":
        out.append(col(Case.assignee_id).is_(None))
    elif f.assignee:
        uid = session.execute(select(col(User.id)).where(col(User.username) == f.assignee)).scalar_one_or_none()
        out.append(col(Case.assignee_id) == (uid if uid is not None else -1))
    if q.waiting is not None:
        out.append(col(Case.waiting_on_customer).is_(q.waiting))
    if q.due_after is not None:
        out.append(col(Case.sla_due_at) > q.due_after)
    if q.due_before is not None:
        out.append(col(Case.sla_due_at) <= q.due_before)
    if q.customer_email:
        parties = select(col(Party.id)).where(func.lower(col(Party.email)) == q.customer_email.strip().lower())
        out.append(col(Case.party_id).in_(parties))
    if f.text and f.text.strip():
        from casemgr.cases.search import text_condition

        out.append(text_condition(f.text, session.get_bind().dialect.name))
    return out


@dataclass(frozen=True)
class _Segment:
    where: ColumnElement[bool]
    order: tuple[tuple[str, bool], ...]  # (column name, descending)


def _segments(sort: SortKey) -> list[_Segment]:
    due_first = (("sla_due_at", False), ("id", False))
    if sort == SortKey.SLA:
        return [_Segment(col(Case.sla_due_at).is_not(None), due_first),
                _Segment(col(Case.sla_due_at).is_(None), (("id", False),))]
    if sort == SortKey.PRIORITY:
        segs = []
        for p in PRIORITY_ORDER:
            segs.append(_Segment(and_(col(Case.priority) == p, col(Case.sla_due_at).is_not(None)), due_first))
            segs.append(_Segment(and_(col(Case.priority) == p, col(Case.sla_due_at).is_(None)), (("id", False),)))
        return segs
    recency = "updated_at" if sort == SortKey.UPDATED else "created_at"
    return [_Segment(true(), ((recency, True), ("id", True)))]


def _value(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def encode_cursor(sort: SortKey, seg: int, values: list[Any]) -> str:
    raw = json.dumps([sort.value, seg, [_value(v) for v in values]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, sort: SortKey, segs: list[_Segment]) -> tuple[int, list[Any]]:
    """Untrusted: anything but a cursor this sort produced is a 400 (casemgr.cases.cursor checks the values)."""
    value = cursor_codec.load(cursor)
    if not (isinstance(value, list) and len(value) == 3):
        raise cursor_codec.bad("not a [sort, segment, values] triple")
    kind, seg, values = value
    if kind != sort.value or type(seg) is not int or not 0 <= seg < len(segs):
        raise cursor_codec.bad("it belongs to another sort, or was changed")
    order = segs[seg].order
    if not isinstance(values, list) or len(values) != len(order):
        raise cursor_codec.bad("it belongs to another sort, or was changed")
    out = [cursor_codec.check_id(v) if name == "id" else cursor_codec.check_time(v)
           for (name, _), v in zip(order, values, strict=True)]
    return seg, out


def _after(order: tuple[tuple[str, bool], ...], values: list[Any]) -> ColumnElement[bool]:
    """Rows strictly after `values` in `order` (lexicographic keyset condition)."""
    parts = []
    for i, (name, desc) in enumerate(order):
        col = getattr(Case, name)
        eq = [getattr(Case, n) == values[j] for j, (n, _) in enumerate(order[:i])]
        parts.append(and_(*eq, col < values[i] if desc else col > values[i]))
    return or_(*parts)


def list_page(session: Session, q: CaseQuery, sort: SortKey = SortKey.SLA, limit: int = 50,
              cursor: str | None = None) -> tuple[list[Case], str | None]:
    """One page in `sort` order and the cursor of the next page (None at the end)."""
    segs = _segments(sort)
    start, values = decode_cursor(cursor, sort, segs) if cursor else (0, None)
    base = select(Case).options(*(defer(getattr(Case, n), raiseload=True) for n in LIST_VIEW_DEFERRED))
    conds = conditions(session, q)
    found: list[tuple[int, Case]] = []
    for i in range(start, len(segs)):
        seg = segs[i]
        stmt = base.where(*conds, seg.where)
        if i == start and values is not None:
            stmt = stmt.where(_after(seg.order, values))
        cols = [getattr(Case, n).desc() if desc else getattr(Case, n) for n, desc in seg.order]
        rows = session.execute(stmt.order_by(*cols).limit(limit + 1 - len(found))).scalars().all()
        found.extend((i, r) for r in rows)
        if len(found) > limit:
            break
    next_cursor = None
    if len(found) > limit:
        found = found[:limit]
        seg_i, last = found[-1]
        next_cursor = encode_cursor(sort, seg_i, [getattr(last, n) for n, _ in segs[seg_i].order])
    return [r for _, r in found], next_cursor


def count(session: Session, q: CaseQuery) -> int:
    return int(session.execute(select(func.count()).select_from(Case).where(*conditions(session, q))).scalar_one())
