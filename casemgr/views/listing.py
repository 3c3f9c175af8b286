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

from sqlalchemy import ColumnElement, and_, false, func, literal, literal_column, or_, select, true, union_all
from sqlmodel import Session, col

from casemgr.cases import cursor as cursor_codec
from casemgr.cases.enums import Priority
from casemgr.cases.models import Case
from casemgr.cases.schemas import CaseFilters
from casemgr.db import table_of
from casemgr.users.models import User
from casemgr.views.enums import SortKey

PRIORITY_ORDER = tuple(reversed(Priority.values()))  # most urgent first
# Counts stop at a cap (shown as "10,000+"): what a count costs is then bounded, whatever the table size.
COUNT_CAP = 10_000
# At most this many matches: read them through the filter's index and sort them, instead of walking a sort
# index past every open case that does not match (a selective filter with a recency sort, e.g. "waiting" by
# updated). Above it matches are dense enough in the sort order: a page costs at most ~limit x open/matches rows.
SORT_MATCHES = 2_000
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


def conditions(session: Session, q: CaseQuery, *, read_in_sort_order: bool = False) -> list[ColumnElement[bool]]:
    """The WHERE terms of `q`. `read_in_sort_order` (SQLite, many matches, a recency sort): the equality filters
    other than status are written `+cases.col = ?`, so the planner reads the recency index and filters, instead
    of reading every match of a filter index and sorting them (a 14,000-case queue at 1M cases: 100-250 ms)."""
    f = q.filters
    out: list[ColumnElement[bool]] = []
    sqlite = session.get_bind().dialect.name == "sqlite"
    for name, value in (("case_type", f.case_type), ("stage", f.stage), ("queue", f.queue),
                        ("priority", f.priority), ("status", f.status), ("category", f.category),
                        ("sla_state", f.sla_state)):
        if value:
            if read_in_sort_order and sqlite and name != "status":
                out.append(literal_column(f"+{Case.__tablename__}.{name}") == value)
            else:
                out.append(col(getattr(Case, name)) == value)
    if q.unassigned or f.assignee == "none":
        out.append(col(Case.assignee_id).is_(None))
    elif f.assignee:
        uid = session.execute(select(col(User.id)).where(col(User.username) == f.assignee)).scalar_one_or_none()
        out.append(rare(col(Case.assignee_id) == (uid if uid is not None else -1), sqlite))
    if q.waiting is not None:
        cond = col(Case.waiting_on_customer).is_(q.waiting)
        out.append(rare(cond, sqlite) if q.waiting else cond)
    if q.due_after is not None:
        out.append(col(Case.sla_due_at) > q.due_after)
    if q.due_before is not None:
        out.append(col(Case.sla_due_at) <= q.due_before)
    if q.customer_email:
        # The customer's case ids first (a covering-index read, see customers.service.case_ids), then the list
        # by id: `party_id IN (subquery)` let SQLite walk a status index over every open case instead.
        from casemgr.customers.service import MAX_CANDIDATES, case_ids, party_ids

        ids = case_ids(session, party_ids(session, q.customer_email), MAX_CANDIDATES)
        out.append(col(Case.id).in_(ids) if ids else false())
    if f.text and f.text.strip():
        from casemgr.cases.search import text_condition

        out.append(text_condition(f.text, session.get_bind().dialect.name))
    return out


def rare(cond: ColumnElement[bool], sqlite: bool) -> ColumnElement[bool]:
    """Tell SQLite's planner that `cond` matches few open cases (one person's, those waiting on a customer).
    Its statistics are averages per index prefix (or absent): they rate `assignee_id = ?` or
    `waiting_on_customer IS 1` like the common values, and then a page walks the priority or recency index past
    every open case instead of reading the few matches. PostgreSQL keeps per-value statistics and needs no hint."""
    if not sqlite:
        return cond
    return func.likelihood(cond, literal_column("0.01"))  # untyped: a Boolean type would append "= 1"


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


def _sort_column(name: str, desc: bool, sort_in_memory: bool) -> Any:
    column: Any = getattr(Case, name)
    if sort_in_memory and name != "id":  # a hinted rowid makes SQLite scan the table
        # SQLite: unary + keeps the value and tells the planner not to read this ORDER BY from an index, so it
        # picks the index of the WHERE and sorts the few matches. PostgreSQL plans from real row estimates.
        column = literal_column(f"+{Case.__tablename__}.{name}")
    return column.desc() if desc else column


def _list_columns() -> list[Any]:
    return [c for c in table_of(Case).columns if c.name not in LIST_VIEW_DEFERRED]


def list_page(session: Session, q: CaseQuery, sort: SortKey = SortKey.SLA, limit: int = 50,
              cursor: str | None = None, matches: int | None = None) -> tuple[list[Any], str | None]:
    """One page in `sort` order and the cursor of the next page (None at the end). `matches`: the (capped)
    count of the query if the caller has it; few matches are sorted rather than read in index order.
    The rows are read-only records with the case columns as attributes, except LIST_VIEW_DEFERRED."""
    segs = _segments(sort)
    sort_in_memory = (matches is not None and matches <= SORT_MATCHES
                      and session.get_bind().dialect.name == "sqlite")
    start, values = decode_cursor(cursor, sort, segs) if cursor else (0, None)
    # Plain rows, not ORM objects: building 50 SQLModel instances (SQLModel.__setattr__ per column) was ~2 ms of
    # a queue page's CPU at 1M cases; a page only reads them.
    base = select(*_list_columns())
    recency = sort in (SortKey.UPDATED, SortKey.CREATED)
    conds = conditions(session, q, read_in_sort_order=recency and matches is not None and matches > SORT_MATCHES)
    found: list[tuple[int, Any]] = []
    for i in range(start, len(segs)):
        seg = segs[i]
        stmt = base.where(*conds, seg.where)
        if i == start and values is not None:
            stmt = stmt.where(_after(seg.order, values))
        cols = [_sort_column(n, desc, sort_in_memory) for n, desc in seg.order]
        rows = session.execute(stmt.order_by(*cols).limit(limit + 1 - len(found))).all()
        found.extend((i, r) for r in rows)
        if len(found) > limit:
            break
    next_cursor = None
    if len(found) > limit:
        found = found[:limit]
        seg_i, last = found[-1]
        next_cursor = encode_cursor(sort, seg_i, [getattr(last, n) for n, _ in segs[seg_i].order])
    return [r for _, r in found], next_cursor


def capped_count(where: list[ColumnElement[bool]], limit: Any, key: str = "") -> Any:
    """SELECT key, count(*) over at most `limit` matching rows (an int or a bound parameter)."""
    inner = select(literal(1).label("one")).select_from(Case).where(*where).limit(limit).subquery()
    return select(literal(key).label("key"), func.count().label("n")).select_from(inner)


def _capped(where: list[ColumnElement[bool]], cap: int, key: str = "") -> Any:
    return capped_count(where, cap + 1, key)


def count(session: Session, q: CaseQuery, cap: int | None = None) -> int:
    """Matching cases, counted up to cap + 1 (more than `cap`, COUNT_CAP by default, reads as "cap+")."""
    return int(session.execute(_capped(conditions(session, q), COUNT_CAP if cap is None else cap)).one()[1])


def counts(session: Session, queries: dict[str, CaseQuery], cap: int | None = None) -> dict[str, int]:
    """Several capped counts in one statement (UNION ALL): a tab bar costs one round trip."""
    if not queries:
        return {}
    limit = COUNT_CAP if cap is None else cap
    parts = [_capped(conditions(session, q), limit, key) for key, q in queries.items()]
    return {str(k): int(n) for k, n in session.execute(union_all(*parts)).all()}


def count_text(n: int, cap: int | None = None) -> str:
    limit = COUNT_CAP if cap is None else cap
    return f"{limit:,}+" if n > limit else f"{n:,}"
