"""SLA engine with time travel: warning at 75 %, breach escalation as configured, repeat escalation until handled,
the clock paused while waiting on the customer, every event audited with a version bump."""

from __future__ import annotations

from datetime import UTC, datetime

import time_machine
from sqlalchemy import select

from casemgr.audit.models import AuditEvent
from casemgr.audit.service import verify
from casemgr.cases import service as cases
from casemgr.cases.models import Case, Task
from casemgr.cases.schemas import CaseCreate, CasePatch
from casemgr.db import read_session, write_session
from casemgr.sla import engine
from casemgr.sla.models import SlaTimer


def utc(*a: int) -> datetime:
    return datetime(*a, tzinfo=UTC)


def _create(at: datetime, case_type: str = "complaint", **kw) -> int:  # type: ignore[no-untyped-def]
    with time_machine.travel(at, tick=False), write_session() as s:
        return cases.create_case(s, CaseCreate(case_type=case_type, subject="Card charged twice", **kw),
                                 actor="user:test", created_at=at).id  # type: ignore[return-value]


def _scan(at: datetime) -> dict[str, int]:
    with time_machine.travel(at, tick=False), write_session() as s:
        return engine.scan(s, at)


def _case(cid: int) -> Case:
    with read_session() as s:
        c = s.get(Case, cid)
        assert c is not None
        return c


def _events(cid: int, prefix: str = "sla.") -> list[AuditEvent]:
    with read_session() as s:
        return [e for e in s.execute(select(AuditEvent).where(AuditEvent.case_id == cid).order_by(AuditEvent.seq))
                .scalars() if e.action.startswith(prefix)]


def _move(cid: int, stage: str, at: datetime) -> Case:
    with time_machine.travel(at, tick=False), write_session() as s:
        c = s.get(Case, cid)
        return cases.transition(s, cid, stage, c.version, actor="user:test", at=at)


def test_warning_breach_and_repeat_escalation_until_the_lead_handles_it() -> None:
    # Intake target: 4 business hours. Friday 14:00 -> 3h on Friday + 1h on Monday = Monday 10:00.
    cid = _create(utc(2026, 11, 27, 14))
    c = _case(cid)
    assert c.sla_due_at == utc(2026, 11, 30, 10) and c.sla_state == "on_track"
    v0, prio0 = c.version, c.priority

    assert _scan(utc(2026, 11, 27, 16, 30)) == {"breached": 0, "escalated": 0, "at_risk": 0, "more": 0}
    # 75 % of 4h used at Friday's close (1 business hour left, on Monday morning).
    assert _scan(utc(2026, 11, 27, 17, 0))["at_risk"] == 1
    c = _case(cid)
    assert c.sla_state == "at_risk" and c.version == v0 + 1
    assert _scan(utc(2026, 11, 29, 12))["at_risk"] == 0  # idempotent
    assert _scan(utc(2026, 11, 30, 9, 59))["breached"] == 0  # the weekend did not count

    out = _scan(utc(2026, 11, 30, 10, 1))
    assert out["breached"] == 1
    c = _case(cid)
    assert c.sla_state == "breached" and c.version == v0 + 2
    # complaint/intake is configured with notify_lead + raise_priority + move_to_queue (policies/sla-calendar.yaml).
    assert c.queue == "escalations" and c.owner_role == "lead"
    order = ["low", "normal", "high", "urgent"]
    assert order.index(c.priority) == min(order.index(prio0) + 1, 3)
    with read_session() as s:
        lead_tasks = s.execute(select(Task).where(Task.case_id == cid, Task.role == "lead")).scalars().all()
    assert len(lead_tasks) == 1 and lead_tasks[0].status == "open" and lead_tasks[0].source == "sla"

    assert _scan(utc(2026, 11, 30, 13))["escalated"] == 0  # repeat interval (4h) not reached
    assert _scan(utc(2026, 11, 30, 14, 2))["escalated"] == 1
    c = _case(cid)
    assert c.version == v0 + 3 and order.index(c.priority) == min(order.index(prio0) + 2, 3)
    assert _scan(utc(2026, 11, 30, 18, 3))["escalated"] == 1
    with read_session() as s:
        assert len(s.execute(select(Task).where(Task.case_id == cid, Task.role == "lead")).scalars().all()) == 1
        assert s.get(SlaTimer, cid).escalations == 3

    # The lead acknowledges: no more repeats.
    with write_session() as s:
        cases.complete_task(s, cid, lead_tasks[0].id, actor="user:lead")  # type: ignore[arg-type]
    assert _scan(utc(2026, 11, 30, 23))["escalated"] == 0
    assert _scan(utc(2026, 12, 1, 12))["escalated"] == 0
    with read_session() as s:
        assert s.get(SlaTimer, cid).next_escalation_at is None

    actions = [e.action for e in _events(cid)]
    assert actions == ["sla.at_risk", "sla.breached", "sla.escalated", "sla.escalated"]
    breached = _events(cid)[1]
    assert breached.actor == "system:sla" and breached.after["actions"] == ["notify_lead", "raise_priority", "move_to_queue"]
    with read_session() as s:
        assert verify(s).ok


def test_repeat_escalation_stops_when_the_case_moves_on() -> None:
    cid = _create(utc(2026, 11, 30, 9))
    assert _scan(utc(2026, 11, 30, 13, 1))["breached"] == 1
    _move(cid, "triage", utc(2026, 11, 30, 14))
    c = _case(cid)
    assert c.sla_state == "on_track" and c.sla_due_at == utc(2026, 12, 1, 14)
    assert _scan(utc(2026, 11, 30, 17, 30))["escalated"] == 0


def test_clock_pauses_while_waiting_on_the_customer_and_resumes_extended() -> None:
    cid = _create(utc(2026, 11, 30, 8))
    _move(cid, "triage", utc(2026, 11, 30, 8, 30))
    _move(cid, "investigation", utc(2026, 11, 30, 9))
    c = _case(cid)
    assert c.sla_due_at == utc(2026, 12, 4, 17)  # 40 business hours
    # Tuesday 09:00: 8 business hours used, 32 left; waiting on the customer for a week.
    _move(cid, "waiting_on_customer", utc(2026, 12, 1, 9))
    c = _case(cid)
    assert c.sla_state == "paused" and c.sla_due_at is None
    assert _scan(utc(2026, 12, 7, 12)) == {"breached": 0, "escalated": 0, "at_risk": 0, "more": 0}
    _move(cid, "investigation", utc(2026, 12, 8, 9))
    c = _case(cid)
    assert c.sla_state == "on_track"
    assert c.sla_due_at == utc(2026, 12, 11, 17)  # the 32 hours left, counted from the resume
    paused, resumed = _events(cid)
    assert paused.action == "sla.paused" and paused.after["remaining_s"] == 32 * 3600
    assert resumed.action == "sla.resumed" and resumed.after["paused_s"] == 40 * 3600  # a business week paused
    # Warned at 75 % of the original target: 10 business hours left = Thursday 15:00.
    assert _scan(utc(2026, 12, 10, 14, 59))["at_risk"] == 0
    assert _scan(utc(2026, 12, 10, 15, 0))["at_risk"] == 1


def test_waiting_flag_pauses_within_a_stage_across_a_weekend() -> None:
    cid = _create(utc(2026, 11, 27, 14))  # due Monday 10:00
    with time_machine.travel(utc(2026, 11, 27, 15), tick=False), write_session() as s:
        c = s.get(Case, cid)
        cases.update_case(s, cid, CasePatch(version=c.version, waiting_on_customer=True), actor="user:test")
    c = _case(cid)
    assert c.sla_state == "paused" and c.sla_due_at is None
    assert _scan(utc(2026, 12, 1, 12))["breached"] == 0  # would have breached on Monday
    with time_machine.travel(utc(2026, 12, 1, 12), tick=False), write_session() as s:
        c = s.get(Case, cid)
        cases.update_case(s, cid, CasePatch(version=c.version, waiting_on_customer=False), actor="user:test")
    c = _case(cid)
    # 3 business hours were left at Friday 15:00 -> Tuesday 12:00 + 3h = 15:00.
    assert c.sla_due_at == utc(2026, 12, 1, 15) and c.sla_state == "on_track"
    with read_session() as s:
        assert s.get(SlaTimer, cid).paused_total_s == (2 + 8 + 3) * 3600


def test_a_case_edited_concurrently_is_not_overwritten() -> None:
    cid = _create(utc(2026, 11, 30, 9))
    with time_machine.travel(utc(2026, 11, 30, 13, 5), tick=False), write_session() as s:
        stale = s.get(Case, cid)
        stale_version = stale.version
        s.expunge(stale)
    with write_session() as s:
        cases.add_note(s, cid, "agent typing", actor="user:agent")
    with write_session() as s:
        stale.version = stale_version
        assert engine._breach(s, stale, utc(2026, 11, 30, 13, 5)) is False  # stale: skipped, no event
    assert _events(cid) == []
    assert _scan(utc(2026, 11, 30, 13, 6))["breached"] == 1  # the next scan picks it up


def test_the_worker_schedules_and_runs_sla_scans() -> None:
    from casemgr.jobs.models import Job
    from casemgr.worker import Worker, load_handlers

    load_handlers()
    cid = _create(utc(2026, 11, 30, 9))
    with time_machine.travel(utc(2026, 11, 30, 14), tick=True):
        Worker().run(once=True)
    assert _case(cid).sla_state == "breached"
    with read_session() as s:
        kinds = {j.kind: j.status for j in s.execute(select(Job)).scalars()}
    assert kinds["sla.scan"] == "done" and kinds["renewal.scan"] == "done"


def test_a_case_paused_after_its_target_passed_breaches_on_resume() -> None:
    cid = _create(utc(2026, 11, 30, 9))  # due 13:00
    _move(cid, "triage", utc(2026, 11, 30, 9, 30))  # triage: 8h -> due Tuesday 09:30
    with time_machine.travel(utc(2026, 12, 1, 10), tick=False), write_session() as s:
        c = s.get(Case, cid)
        cases.update_case(s, cid, CasePatch(version=c.version, waiting_on_customer=True), actor="user:test")
    with time_machine.travel(utc(2026, 12, 2, 10), tick=False), write_session() as s:
        c = s.get(Case, cid)
        cases.update_case(s, cid, CasePatch(version=c.version, waiting_on_customer=False), actor="user:test")
    assert _case(cid).sla_due_at == utc(2026, 12, 2, 10)
    assert _scan(utc(2026, 12, 2, 10, 1))["breached"] == 1
    assert [e.action for e in _events(cid)] == ["sla.paused", "sla.resumed", "sla.breached"]


def test_a_backlog_of_breaches_is_worked_off_in_batches() -> None:
    from casemgr.jobs.models import Job
    from casemgr.jobs.service import enqueue
    from casemgr.worker import Worker, load_handlers

    load_handlers()
    ids = [_create(utc(2026, 11, 30, 9)) for _ in range(5)]
    # Queue and work at the same travelled time: a job queued at the wall clock would not be due yet
    # in a 2026-11-30 afternoon once the real date is past it.
    with time_machine.travel(utc(2026, 11, 30, 14), tick=True):
        with write_session() as s:
            enqueue(s, "sla.scan", {"limit": 2})
        Worker(schedule=False).run(once=True)
    assert {_case(i).sla_state for i in ids} == {"breached"}
    with read_session() as s:
        scans = s.execute(select(Job).where(Job.kind == "sla.scan")).scalars().all()
    assert len(scans) >= 3 and all(j.status == "done" for j in scans)
