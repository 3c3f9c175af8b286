"""Contract renewal reminders: a task opens N days before the notice deadline (expiration - notice period).

The dates come from the contract's fields (a human's entry wins) or the AI extraction in `case.contract`.
The computed dates are stored on the contract (`case.contract["renewal"]`) so the case page shows them.
Running the scan twice opens one task: the task id is recorded with the dates.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from dateutil.relativedelta import relativedelta
from sqlalchemy import select
from sqlmodel import Session, col

from casemgr.cases.enums import CaseStatus
from casemgr.cases.models import Case, Task
from casemgr.clock import now
from casemgr.sla.calendar import get_calendar

ACTOR = "system:renewals"
WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
         "ten": 10, "eleven": 11, "twelve": 12, "fifteen": 15, "twenty": 20, "thirty": 30, "forty-five": 45,
         "forty five": 45, "forty": 40, "sixty": 60, "ninety": 90, "a": 1, "an": 1, "one hundred twenty": 120,
         "one hundred eighty": 180}
UNIT_DAYS = {"day": 1, "business day": 1, "week": 7, "month": 30, "year": 365}
_NUM = r"(\d{1,4}|" + "|".join(sorted((re.escape(w) for w in WORDS), key=len, reverse=True)) + r")"
_PERIOD = re.compile(_NUM + r"(?:\s*\(\s*(\d{1,4})\s*\))?[\s-]*(business day|day|week|month|year)s?\b", re.I)
RENEWAL_STAGES = ("active", "signature", "renewal")


def _amount(m: re.Match[str]) -> tuple[int, str] | None:
    digits = m.group(2) or m.group(1)
    n = int(digits) if digits.isdigit() else WORDS.get(digits.lower())
    if n is None:
        return None
    return n, m.group(3).lower()


def parse_period_days(text: str | None) -> int | None:
    """'sixty (60) days' -> 60, '3 months' -> 90, '1 year' -> 365; None when no period is written."""
    if not text:
        return None
    m = _PERIOD.search(text)
    if not m:
        return None
    got = _amount(m)
    return None if got is None else got[0] * UNIT_DAYS[got[1]]


def parse_term(text: str | None) -> relativedelta | None:
    """A renewal term as a calendar step: 'successive one (1) year terms' -> 1 year."""
    if not text:
        return None
    m = _PERIOD.search(text)
    if not m:
        return None
    got = _amount(m)
    if got is None:
        return None
    n, unit = got
    return {"year": relativedelta(years=n), "month": relativedelta(months=n), "week": relativedelta(weeks=n)}.get(
        unit, relativedelta(days=n))


def _parse_date(value: Any) -> date | None:
    if isinstance(value, date):
        return value
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def compute(case: Any, today: date) -> dict[str, Any] | None:
    """The renewal dates of a contract case (anything with its `fields` and `contract`: a Case or a plain row), or
    None when its expiration date is unknown."""
    fields = case.fields or {}
    extracted = case.contract or {}
    expiration = _parse_date(fields.get("expiration_date")) or _parse_date(extracted.get("expiration_date"))
    if expiration is None:
        return None
    notice_text = fields.get("notice_period") or extracted.get("notice_period_to_terminate_renewal")
    term_text = fields.get("renewal_term") or extracted.get("renewal_term")
    cfg = get_calendar().spec.renewals
    notice_days = parse_period_days(notice_text)
    notice_known = notice_days is not None
    if notice_days is None:
        notice_days = cfg.default_notice_days
    # The extractor writes "successive 1 year" for a contract that renews by itself and "2 years" for a renewal
    # the parties may choose; only the first rolls the dates forward. A term an agent typed is taken as written.
    automatic = bool(fields.get("renewal_term")) or (term_text or "").lower().startswith("successive")
    term = parse_term(term_text) if automatic else None
    # An auto-renewing contract whose date passed runs to the end of its current renewal term.
    current = expiration
    if term is not None:
        for _ in range(200):
            if current - timedelta(days=notice_days) >= today:
                break
            current = current + term
    deadline = current - timedelta(days=notice_days)
    remind_on = deadline - timedelta(days=cfg.remind_days_before_notice)
    return {"expiration_date": current.isoformat(), "original_expiration_date": expiration.isoformat(),
            "notice_days": notice_days, "notice_known": notice_known, "notice_deadline": deadline.isoformat(),
            "remind_on": remind_on.isoformat(), "renewal_term": term_text, "auto_renews": term is not None}


def renewal_types() -> list[str]:
    """Case types whose YAML switches renewal reminders on (`renewals: true`)."""
    from casemgr.casetypes.registry import get_registry

    return [ct.name for ct in get_registry().case_types.values() if ct.renewals]


def _candidates(last_id: int) -> list[Any]:
    return [col(Case.case_type).in_(renewal_types()), Case.status == CaseStatus.OPEN,
            col(Case.stage).in_(RENEWAL_STAGES), col(Case.id) > last_id]


def scan(session: Session, at: datetime | None = None, *, batch: int = 1000) -> dict[str, int]:
    """Store renewal dates on open contracts and open a reminder task when one is due."""
    at = at or now()
    today = at.astimezone(get_calendar().tz).date()
    out = {"checked": 0, "updated": 0, "tasks": 0}
    last_id = 0
    while True:
        rows = session.execute(select(Case).where(*_candidates(last_id)).order_by(Case.id).limit(batch)).scalars().all()
        if not rows:
            return out
        last_id = rows[-1].id or last_id
        out["checked"] += len(rows)
        for case in rows:
            _renew(session, case, today, at, out)


# Candidates whose dates are computed per read session, outside the write lock (plain columns, no ORM objects).
PLAN_PAGE = 500


def candidate_ids(session: Session) -> list[int]:
    """The ids of every renewal candidate's (type, stage), ascending, read from the covering
    ix_cases_type_stage_due index: one equality look-up per (type, stage), so the cost follows the candidates,
    not the table (a keyset walk of the primary key read ~30 big rows per candidate at 1M cases). The status is
    checked when the rows are read (`_candidates`): a case in a renewal stage is open in practice."""
    ids: list[int] = []
    for case_type in renewal_types():
        for stage in RENEWAL_STAGES:
            ids.extend(int(i) for i in session.execute(
                select(col(Case.id)).where(col(Case.case_type) == case_type, col(Case.stage) == stage)).scalars())
    return sorted(ids)


def scan_chunked(at: datetime | None = None, *, chunk: int = 25) -> dict[str, int]:
    """`scan` in short write transactions (issue 23). The candidates' ids come from an index
    (`candidate_ids`); their dates are computed from plain (fields, contract) rows in read sessions, outside the
    write lock; only the contracts with something new are re-read and changed under the lock, at most `chunk`
    per write transaction (casemgr/sla/chunks.py commits earlier on a slow host). Under the lock each one is
    computed again from the row as it is then, so a case edited meanwhile gets its current dates."""
    from casemgr.db import read_session
    from casemgr.sla.chunks import apply_in_transactions

    at = at or now()
    today = at.astimezone(get_calendar().tz).date()
    out = {"checked": 0, "updated": 0, "tasks": 0, "transactions": 0}

    def load(session: Session, ids: list[int]) -> list[Any]:
        return list(session.execute(select(Case).where(*_candidates(0), col(Case.id).in_(ids)).order_by(Case.id))
                    .scalars().all())

    with read_session() as rs:
        ids = candidate_ids(rs)
    for start in range(0, len(ids), PLAN_PAGE):
        page = ids[start:start + PLAN_PAGE]
        with read_session() as rs:
            rows = rs.execute(select(col(Case.id), col(Case.fields), col(Case.contract))
                              .where(*_candidates(0), col(Case.id).in_(page)).order_by(col(Case.id))).all()
        out["checked"] += len(rows)
        todo = [int(r.id) for r in rows if _plan(r, today) is not None]
        for first in range(0, len(todo), chunk):
            out["transactions"] += apply_in_transactions(todo[first:first + chunk], load,
                                                       lambda s, case: _renew(s, case, today, at, out))
    return out


def _plan(case: Any, today: date) -> tuple[dict[str, Any], dict[str, Any], bool] | None:
    """(new renewal info, stored info, reminder due) when the contract's stored renewal dates or its reminder
    task need a change; None when there is nothing new. `case` needs only `fields` and `contract`."""
    info = compute(case, today)
    if info is None:
        return None
    old = (case.contract or {}).get("renewal") or {}
    due = date.fromisoformat(info["remind_on"]) <= today
    same_cycle = old.get("notice_deadline") == info["notice_deadline"]
    if same_cycle and old.get("task_id"):
        info["task_id"], info["task_opened_at"] = old["task_id"], old.get("task_opened_at")
    if {k: old.get(k) for k in info} == info and not (due and not info.get("task_id")):
        return None  # nothing new
    return info, old, due


def _renew(session: Session, case: Case, today: date, at: datetime, out: dict[str, int]) -> None:
    from casemgr.cases.change import change
    from casemgr.errors import StaleVersion

    role = get_calendar().spec.renewals.role
    plan = _plan(case, today)
    if plan is None:
        return
    info, old, due = plan
    try:
        with session.begin_nested(), change(session, case.id or 0, case.version, ACTOR,
                                            "contract.renewal_dates", at=at, entity="contract") as ch:
            claimed = ch.case
            if due and not info.get("task_id"):
                task = Task(case_id=claimed.id, name=f"Renewal: notice deadline {info['notice_deadline']}",
                            kind="task", stage=claimed.stage, role=role, sop="sop/contract-renewal.md",
                            source="sla", due_at=datetime.combine(date.fromisoformat(info["notice_deadline"]),
                                                                  datetime.min.time(), tzinfo=get_calendar().tz),
                            created_at=at)
                session.add(task)
                session.flush()
                info["task_id"], info["task_opened_at"] = task.id, at.isoformat()
                ch.action = "contract.renewal_reminder"
                out["tasks"] += 1
            claimed.contract = {**(claimed.contract or {}), "renewal": info}
            ch.audit(before={"renewal": old or None}, after={"renewal": info, "version": claimed.version})
            out["updated"] += 1
    except StaleVersion:
        return  # edited right now; the next scan picks it up
