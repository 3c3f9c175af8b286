"""Recurring causes, trends and top movers from closed cases with a resolution code (one GROUP BY in SQL)."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Integer, and_, cast, func, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from casemgr.cases.models import Case
from casemgr.casetypes.registry import get_registry
from casemgr.clock import now
from casemgr.db import epoch_seconds

TOP = 15
NONE = "(none)"  # a case the AI did not classify, or a product nobody set


def _intent(session: Session) -> ColumnElement[Any]:
    """The AI's issue classification (cases.ai -> classification -> intent), as text, in SQL."""
    if session.get_bind().dialect.name == "sqlite":
        return func.json_extract(col(Case.ai), "$.classification.intent")
    return col(Case.ai).op("->")("classification").op("->>")("intent")


@dataclass(frozen=True)
class Window:
    """`days` whole UTC days ending with the day of `at`, and the same number of days before them."""

    days: int
    start: date  # first day of the period
    end: date  # last day of the period (inclusive)

    @classmethod
    def ending(cls, at: datetime, days: int) -> Window:
        end = at.astimezone(UTC).date()
        return cls(days, end - timedelta(days=days - 1), end)

    @property
    def previous_start(self) -> date:
        return self.start - timedelta(days=self.days)

    def since(self) -> datetime:
        return datetime.combine(self.previous_start, datetime.min.time(), tzinfo=UTC)

    def until(self) -> datetime:
        return datetime.combine(self.end + timedelta(days=1), datetime.min.time(), tzinfo=UTC)


def rows(session: Session, window: Window, case_types: list[str]) -> list[tuple[str, str, str, str, str, date, int]]:
    """(case type, code, product, issue, queue, close day, cases) over the period and the one before it."""
    days_since_1970 = epoch_seconds(session, col(Case.closed_at)) / 86400.0
    # The close day as a whole number: SQLite's CAST truncates (positive here, so floors); PostgreSQL's rounds.
    day = (cast(days_since_1970, Integer) if session.get_bind().dialect.name == "sqlite"
           else cast(func.floor(days_since_1970), Integer))
    intent = _intent(session)
    q = (select(col(Case.case_type), col(Case.resolution_code), col(Case.category), intent, col(Case.queue), day,
                func.count())
         .where(col(Case.case_type).in_(case_types), col(Case.resolution_code).is_not(None),
                and_(col(Case.closed_at) >= window.since(), col(Case.closed_at) < window.until()),
                col(Case.merged_into_id).is_(None))
         .group_by(col(Case.case_type), col(Case.resolution_code), col(Case.category), intent, col(Case.queue), day))
    epoch0 = date(1970, 1, 1)
    return [(ct, code, product or NONE, issue or NONE, queue, epoch0 + timedelta(days=int(d)), int(n))
            for ct, code, product, issue, queue, d, n in session.execute(q).all()]


def _share(n: int, total: int) -> float | None:
    return round(n / total, 4) if total else None


def _week(d: date) -> date:
    return d - timedelta(days=d.weekday())  # Monday


def coded_types(case_type: str | None = None) -> list[str]:
    """The types whose cases carry resolution codes (all, or the one asked for if it has them)."""
    reg = get_registry()
    names = [reg.get(case_type).name] if case_type else list(reg.case_types)
    return [n for n in names if reg.case_types[n].resolution_codes]


def report(session: Session, *, days: int = 30, case_type: str | None = None, at: datetime | None = None) -> dict[str, Any]:
    window = Window.ending(at or now(), days)
    types = coded_types(case_type)
    reg = get_registry()
    labels = {(t, c.name): c.label for t in types for c in reg.case_types[t].resolution_codes}
    cur: Counter[tuple[str, str]] = Counter()
    prev: Counter[tuple[str, str]] = Counter()
    dims: dict[str, Counter[tuple[str, str, str]]] = {k: Counter() for k in ("product", "issue", "queue")}
    pairs_cur: Counter[tuple[str, str, str]] = Counter()  # (type, code, product)
    pairs_prev: Counter[tuple[str, str, str]] = Counter()
    weekly: defaultdict[date, Counter[str]] = defaultdict(Counter)
    for ct, code, product, issue, queue, d, n in rows(session, window, types):
        if d >= window.start:
            cur[(ct, code)] += n
            dims["product"][(ct, code, product)] += n
            dims["issue"][(ct, code, issue)] += n
            dims["queue"][(ct, code, queue)] += n
            pairs_cur[(ct, code, product)] += n
            weekly[_week(d)][code] += n
        else:
            prev[(ct, code)] += n
            pairs_prev[(ct, code, product)] += n
    total, previous_total = sum(cur.values()), sum(prev.values())
    causes = [{"case_type": ct, "code": code, "label": labels.get((ct, code), code), "cases": cur[(ct, code)],
               "share": _share(cur[(ct, code)], total), "previous": prev[(ct, code)],
               "previous_share": _share(prev[(ct, code)], previous_total), "change": cur[(ct, code)] - prev[(ct, code)]}
              for ct, code in sorted(set(cur) | set(prev), key=lambda k: (-cur[k], -prev[k], k))]

    def by(dim: str) -> list[dict[str, Any]]:
        # Recurring: a cause seen at least twice for the same product / issue / queue in the period.
        return [{"case_type": ct, dim: value, "code": code, "label": labels.get((ct, code), code), "cases": n}
                for (ct, code, value), n in sorted(dims[dim].items(), key=lambda kv: (-kv[1], kv[0])) if n >= 2][:TOP]

    movers: list[dict[str, Any]] = []
    for key in set(pairs_cur) | set(pairs_prev):
        delta = pairs_cur[key] - pairs_prev[key]
        if delta:
            ct, code, product = key
            movers.append({"case_type": ct, "code": code, "label": labels.get((ct, code), code), "product": product,
                           "cases": pairs_cur[key], "previous": pairs_prev[key], "change": delta,
                           "change_pct": round(100.0 * delta / pairs_prev[key], 1) if pairs_prev[key] else None})
    movers.sort(key=lambda m: (-abs(m["change"]), -m["cases"], m["code"], m["product"]))
    weeks = sorted({_week(window.start + timedelta(days=i)) for i in range(days)})
    return {
        "case_types": types, "period_days": days, "from": window.start.isoformat(), "to": window.end.isoformat(),
        "previous_from": window.previous_start.isoformat(),
        "previous_to": (window.start - timedelta(days=1)).isoformat(),
        "total": total, "previous_total": previous_total, "causes": causes,
        "by_product": by("product"), "by_issue": by("issue"), "by_queue": by("queue"),
        "trend": [{"week": w.isoformat(), "cases": sum(weekly[w].values()), "by_code": dict(sorted(weekly[w].items()))}
                  for w in weeks],
        "top_movers": movers[:10],
    }
