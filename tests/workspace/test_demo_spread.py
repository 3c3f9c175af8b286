"""`casemgr demo` spreads SLA due times around now: some due today, some at risk, a few breached (it used to
show 236 of 271 open cases breached)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from casemgr.cases.models import Case
from casemgr.db import read_session
from casemgr.demo import seed_cases


def test_open_cases_are_due_around_now(time_machine) -> None:  # type: ignore[no-untyped-def]
    at = datetime(2026, 6, 10, 11, 0, tzinfo=UTC)  # a Wednesday; any date works
    time_machine.move_to(at, tick=False)
    assert seed_cases(n_complaints=60, n_contracts=15, seed=7) == 75
    with read_session() as s:
        rows = s.execute(select(Case.sla_due_at, Case.created_at, Case.updated_at)
                         .where(Case.status == "open", Case.sla_due_at.is_not(None))).all()  # type: ignore[union-attr]
        every = s.execute(select(Case.created_at, Case.updated_at)).all()
    assert len(rows) >= 30
    left = [(due - at).total_seconds() / 3600 for due, _, _ in rows]
    breached = sum(h < 0 for h in left)
    assert 1 <= breached <= 0.2 * len(rows), (breached, len(rows))
    assert sum(0 < h <= 2 for h in left) >= 2  # at risk
    end_of_day = datetime(2026, 6, 11, tzinfo=UTC)
    assert sum(at < due <= end_of_day for due, _, _ in rows) >= 3  # due today
    assert min(left) > -24 * 4  # nothing months overdue
    assert all(c <= at and u <= at + timedelta(seconds=1) for c, u in every)  # nothing in the future
