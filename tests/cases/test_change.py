"""The one unit of work for case changes, its events, and the cases vocabulary."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from casemgr.audit.models import AuditEvent
from casemgr.cases import events, service
from casemgr.cases.change import change
from casemgr.cases.enums import CaseStatus, Priority, Urgency
from casemgr.cases.schemas import CaseCreate, CasePatch
from casemgr.db import write_session
from casemgr.errors import StaleVersion, ValidationFailed
from casemgr.rules import filemodel as rules_schema
from casemgr.sla.enums import SlaState


def _case(s) -> int:  # type: ignore[no-untyped-def]
    case = service.create_case(s, CaseCreate(case_type="complaint", subject="Card charged twice",
                                             description="twice"), "user:ann")
    return int(case.id or 0)


def _events(s, case_id: int) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    return list(s.execute(select(AuditEvent).where(AuditEvent.case_id == case_id).order_by(AuditEvent.seq)).scalars())


def test_a_change_claims_the_version_and_writes_one_diff_event() -> None:
    with write_session() as s:
        cid = _case(s)
        v0 = service.get_case(s, cid).version
        n0 = len(_events(s, cid))
        with change(s, cid, v0, "user:ann", "case.updated") as ch:
            ch.case.subject = "Charged three times"
            ch.extra["reason"] = "customer wrote again"
        new = _events(s, cid)[n0:]
        assert [e.action for e in new] == ["case.updated"]  # no re-route was asked for
        # The snapshot is taken after the claim, so the diff shows what the body changed (as before the refactor).
        assert new[0].before == {"subject": "Card charged twice"}
        assert new[0].after == {"subject": "Charged three times", "reason": "customer wrote again"}
        assert service.get_case(s, cid).version == v0 + 1
        with pytest.raises(StaleVersion), change(s, cid, v0, "user:bob", "case.updated"):
            pytest.fail("a stale version must not enter the body")


def test_an_error_in_the_body_records_nothing_and_the_caller_rolls_back() -> None:
    with write_session() as s:
        cid = _case(s)
        v0 = service.get_case(s, cid).version
        n0 = len(_events(s, cid))
    with pytest.raises(ValidationFailed), write_session() as s, change(s, cid, v0, "user:ann", "case.updated") as ch:
        ch.case.subject = "half done"
        raise ValidationFailed("no")
    with write_session() as s:
        case = service.get_case(s, cid)
        assert (case.version, case.subject, len(_events(s, cid))) == (v0, "Card charged twice", n0)


def test_reroute_runs_once_at_the_end_only_when_a_fact_changed() -> None:
    with write_session() as s:
        cid = _case(s)
        case = service.get_case(s, cid)
        n0 = len(_events(s, cid))
        service.update_case(s, cid, CasePatch(version=case.version, subject="New words"), "user:ann")
        assert [e.action for e in _events(s, cid)[n0:]] == ["case.updated"]
        n1 = len(_events(s, cid))
        service.update_case(s, cid, CasePatch(version=case.version, priority=Priority.URGENT), "user:ann")
        assert [e.action for e in _events(s, cid)[n1:]] == ["case.updated", "case.routed"]


def test_listeners_hear_wait_and_stage_changes_inside_the_change() -> None:
    heard: list[tuple[str, str, bool]] = []

    def stage(ev: events.CaseEvent) -> None:
        heard.append(("stage", ev.case.stage, ev.before["stage"] != ev.case.stage))

    def wait(ev: events.CaseEvent) -> None:
        heard.append(("wait", ev.case.stage, bool(ev.case.waiting_on_customer)))

    events.connect(events.CaseEventName.STAGE_CHANGED, stage)
    events.connect(events.CaseEventName.WAIT_CHANGED, wait)
    try:
        with write_session() as s:
            cid = _case(s)
            case = service.get_case(s, cid)
            service.update_case(s, cid, CasePatch(version=case.version, waiting_on_customer=True), "user:ann")
            assert case.sla_state == SlaState.PAUSED  # the SLA listener (casemgr.listeners) ran too
            service.update_case(s, cid, CasePatch(version=case.version, subject="no event"), "user:ann")
    finally:
        events._listeners[events.CaseEventName.STAGE_CHANGED].remove(stage)
        events._listeners[events.CaseEventName.WAIT_CHANGED].remove(wait)
    assert heard == [("wait", case.stage, True)]


def test_the_vocabulary_is_stored_as_plain_strings_and_shared() -> None:
    with write_session() as s:
        cid = _case(s)
        row = s.execute(text("SELECT status, priority, sla_state FROM cases WHERE id = :i"), {"i": cid}).one()
        assert tuple(row) == ("open", "normal", "on_track")
        assert service.get_case(s, cid).status == CaseStatus.OPEN
    assert Priority.values() == ("low", "normal", "high", "urgent") == tuple(rules_schema.PRIORITIES)
    assert [Priority(p).raised() for p in Priority] == ["normal", "high", "urgent", "urgent"]
    assert {u.value: u.priority.value for u in Urgency} == {"low": "low", "normal": "normal", "high": "high",
                                                           "critical": "urgent"}
