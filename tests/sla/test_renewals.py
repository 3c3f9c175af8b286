"""Contract renewal reminders: dates from the contract's fields or the AI extraction, a task N days before the
notice deadline, once, visible on the contract; time travel across the reminder date."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import time_machine
from sqlalchemy import select

from casemgr.audit.models import AuditEvent
from casemgr.cases import service as cases
from casemgr.cases.models import Case, Task
from casemgr.cases.schemas import CaseCreate
from casemgr.db import read_session, write_session
from casemgr.sla import renewals


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


@pytest.mark.parametrize(("text", "days"), [
    ("sixty (60) days", 60), ("at least 90 days' prior written notice", 90), ("three (3) months", 90),
    ("one year", 365), ("30 business days", 30), ("thirty days before the end of the term", 30), ("", None),
    ("by written notice", None),
])
def test_notice_period_parsing(text: str, days: int | None) -> None:
    assert renewals.parse_period_days(text) == days


def _active_contract(at: datetime, fields: dict, contract: dict | None = None) -> int:  # type: ignore[type-arg]
    with time_machine.travel(at, tick=False), write_session() as s:
        case = cases.create_case(s, CaseCreate(case_type="contract", subject="Supply agreement", fields=fields),
                                 actor="user:test", created_at=at)
        for stage in ("drafting", "approval", "signature", "active"):
            case = cases.transition(s, case.id, stage, case.version, actor="user:test", at=at)
        if contract is not None:
            case.contract = contract
            s.add(case)
        return case.id  # type: ignore[return-value]


def _scan(at: datetime) -> dict[str, int]:
    with time_machine.travel(at, tick=False), write_session() as s:
        return renewals.scan(s, at)


def _renewal_tasks(cid: int) -> list[Task]:
    with read_session() as s:
        return list(s.execute(select(Task).where(Task.case_id == cid, Task.name.like("Renewal:%"))).scalars())


def test_reminder_opens_once_n_days_before_the_notice_deadline() -> None:
    cid = _active_contract(utc(2026, 11, 2, 10), {"expiration_date": "2027-03-31", "notice_period": "sixty (60) days",
                                                   "renewal_term": "one (1) year"})
    out = _scan(utc(2026, 12, 1, 10))
    assert out["updated"] == 1 and out["tasks"] == 0
    with read_session() as s:
        info = s.get(Case, cid).contract["renewal"]
    # Notice deadline 31 Mar 2027 - 60 days = 30 Jan 2027; reminder 30 days earlier = 31 Dec 2026.
    assert info["notice_deadline"] == "2027-01-30" and info["remind_on"] == "2026-12-31"
    assert info["auto_renews"] is True and "task_id" not in info
    assert _scan(utc(2026, 12, 30, 10))["updated"] == 0  # nothing new, no task yet
    assert _renewal_tasks(cid) == []

    out = _scan(utc(2026, 12, 31, 9))
    assert out["tasks"] == 1
    [task] = _renewal_tasks(cid)
    assert task.status == "open" and task.role == "agent" and "2027-01-30" in task.name
    assert _scan(utc(2027, 1, 2, 9))["tasks"] == 0  # once
    assert len(_renewal_tasks(cid)) == 1
    with read_session() as s:
        case = s.get(Case, cid)
        assert case.contract["renewal"]["task_id"] == task.id
        actions = [e.action for e in s.execute(select(AuditEvent).where(AuditEvent.case_id == cid)).scalars()]
    assert actions.count("contract.renewal_dates") == 1 and actions.count("contract.renewal_reminder") == 1


def test_extracted_dates_and_auto_renewal_roll_forward() -> None:
    cid = _active_contract(utc(2026, 11, 2, 10), {}, {"expiration_date": "2026-06-30", "renewal_term":
                                                      "successive one year terms",
                                                      "notice_period_to_terminate_renewal": "90 days"})
    _scan(utc(2026, 11, 3, 10))
    with read_session() as s:
        info = s.get(Case, cid).contract["renewal"]
        assert s.get(Case, cid).contract["expiration_date"] == "2026-06-30"  # the extraction is kept
    assert info["expiration_date"] == "2027-06-30" and info["notice_deadline"] == "2027-04-01"
    assert date.fromisoformat(info["remind_on"]) == date(2027, 3, 2)


def test_an_optional_renewal_does_not_roll_forward() -> None:
    """Extracted "2 years" is a renewal the parties may choose (not "successive"): the contract ends when it ends."""
    cid = _active_contract(utc(2026, 11, 2, 10), {}, {"expiration_date": "2026-06-30", "renewal_term": "2 years",
                                                      "notice_period_to_terminate_renewal": None})
    _scan(utc(2026, 11, 3, 10))
    with read_session() as s:
        info = s.get(Case, cid).contract["renewal"]
    assert info["expiration_date"] == "2026-06-30" and info["auto_renews"] is False


def test_contract_without_expiration_is_left_alone() -> None:
    cid = _active_contract(utc(2026, 11, 2, 10), {"notice_period": "30 days"})
    assert _scan(utc(2026, 11, 3, 10)) == {"checked": 1, "updated": 0, "tasks": 0}
    with read_session() as s:
        assert (s.get(Case, cid).contract or {}).get("renewal") is None
