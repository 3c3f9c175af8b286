"""Issue 22: a running case stays on the case-type version it started with; publishing changes new cases only."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from casemgr.audit.models import AuditEvent
from casemgr.cases import service
from casemgr.cases.models import Case
from casemgr.casetypes import lifecycle, versions
from casemgr.casetypes.documents import CASE_TYPES, CASE_TYPES_FILE
from casemgr.casetypes.registry import get_registry
from casemgr.db import read_session, write_session
from casemgr.policyfile import PolicyFileError
from tests.casetypes.helpers import edited, publish_v2, shipped_text


def _case(case_id: int) -> Case:
    with read_session() as s:
        c = s.get(Case, case_id)
        assert c is not None
        s.expunge(c)
        return c


def _move(case_id: int, to: str) -> Case:
    with write_session() as s:
        c = s.get(Case, case_id)
        assert c is not None
        service.transition(s, case_id, to, c.version, "user:test")
    return _case(case_id)


def test_new_cases_are_pinned_to_the_version_in_force(make_case) -> None:  # type: ignore[no-untyped-def]
    c = _case(make_case())
    assert c.case_type_version == CASE_TYPES.shipped().version == get_registry().version
    assert c.sla_hours == 4


def test_running_case_keeps_its_sla_and_stages_after_a_publish(make_case) -> None:  # type: ignore[no-untyped-def]
    old_id = make_case(subject="opened before the change")
    v1 = _case(old_id).case_type_version
    v2 = publish_v2()
    assert v2 != v1 and get_registry().version == v2
    new_id = make_case(subject="opened after the change")
    old, new = _case(old_id), _case(new_id)
    assert (old.case_type_version, new.case_type_version) == (v1, v2)
    assert (old.sla_hours, new.sla_hours) == (4, 2)
    # The next stage too: the old case gets v1's triage SLA (8 h), the new one v2's (6 h).
    assert _move(old_id, "triage").sla_hours == 8
    assert _move(new_id, "triage").sla_hours == 6
    # Transitions: v1 still lets the old case go resolution -> feedback; v2 has no feedback stage.
    _move(old_id, "resolution")
    _move(new_id, "resolution")
    assert "feedback" in service.allowed_transitions(_case(old_id))
    assert service.allowed_transitions(_case(new_id)) == ["closed", "investigation"]
    assert _move(old_id, "feedback").stage == "feedback"
    with write_session() as s, pytest.raises(Exception) as err:
        service.transition(s, new_id, "feedback", _case(new_id).version, "user:test")
    assert getattr(err.value, "status_code", None) in (409, 422)


def test_versions_are_numbered_and_resolvable(make_case) -> None:  # type: ignore[no-untyped-def]
    v1 = CASE_TYPES.shipped().version
    v2 = publish_v2()
    with read_session() as s:
        assert versions.resolve(s, "v1") == versions.resolve(s, "1") == v1
        assert versions.resolve(s, "v2") == versions.resolve(s, v2[:8]) == versions.resolve(s, "active") == v2
        assert versions.label(s, v2).startswith("v2 (")
        with pytest.raises(Exception, match="no case-types version"):
            versions.resolve(s, "v9")


def test_rollback_makes_v1_in_force_again_for_new_cases(make_case) -> None:  # type: ignore[no-untyped-def]
    v1 = CASE_TYPES.shipped().version
    v2 = publish_v2()
    pinned_to_v2 = make_case()
    with write_session() as s:
        lifecycle.rollback(s, "case-types", actor="user:alice", roles={"governance"}, reason="back", to="v1")
    assert get_registry().version == v1
    assert _case(make_case()).case_type_version == v1
    assert _case(pinned_to_v2).case_type_version == v2 and _case(pinned_to_v2).sla_hours == 2
    with read_session() as s:
        actions = [e.action for e in s.execute(select(AuditEvent).order_by(AuditEvent.seq)).scalars()]
    assert {"case-types.baseline", "case-types.publish", "case-types.rollback",
            "case-types.change_requested", "case-types.change_approved"} <= set(actions)


def test_an_invalid_candidate_is_refused_with_file_and_line() -> None:
    text = edited(shipped_text(), ("        transitions: [triage, closed]\n", "        transitions: [triage, nowhere]\n"))
    problems = lifecycle.check("case-types", {CASE_TYPES_FILE: text})
    assert len(problems) == 1 and "nowhere" in problems[0].message
    assert text.splitlines()[problems[0].line - 1].strip() == "transitions: [triage, nowhere]"
    with write_session() as s, pytest.raises(PolicyFileError):
        lifecycle.request_publish(s, "case-types", {CASE_TYPES_FILE: text}, actor="user:alice", user_id=None,
                                  roles={"governance"}, reason="broken")


def test_publishing_needs_the_governance_role() -> None:
    text = edited(shipped_text(), *(("sla: {hours: 16}\n        tasks:\n          - {name: Send resolution",
                                     "sla: {hours: 12}\n        tasks:\n          - {name: Send resolution"),))
    with write_session() as s, pytest.raises(Exception) as err:
        lifecycle.request_publish(s, "case-types", {CASE_TYPES_FILE: text}, actor="user:agent", user_id=None,
                                  roles={"agent"}, reason="not mine")
    assert getattr(err.value, "status_code", None) == 403


def test_sla_scans_warn_a_case_whose_stage_exists_only_in_its_pinned_version(make_case) -> None:  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from casemgr.sla import engine
    from casemgr.sla.enums import SlaState

    ids = [make_case(subject=f"feedback {i}") for i in range(2)]
    for case_id in ids:
        for stage in ("triage", "resolution", "feedback"):
            _move(case_id, stage)
    publish_v2()  # v2 has no feedback stage
    first, second = (_case(i) for i in ids)
    assert first.sla_due_at is not None and first.sla_state == SlaState.ON_TRACK
    with write_session() as s:
        out = engine.scan(s, at=first.sla_due_at - timedelta(minutes=1))
    assert out["at_risk"] >= 1 and _case(ids[0]).sla_state == SlaState.AT_RISK
    assert second.sla_due_at is not None
    out = engine.scan_chunked(at=second.sla_due_at - timedelta(minutes=1))
    assert _case(ids[1]).sla_state == SlaState.AT_RISK


def test_a_plain_copy_of_a_case_follows_its_pinned_version_too(make_case) -> None:  # type: ignore[no-untyped-def]
    """Planning works on plain copies (drafts, enrichment snapshots): the version in force needs no session, an
    older pinned version is still read from the database."""
    from types import SimpleNamespace

    old_id = make_case(subject="opened before the change")
    v1 = _case(old_id).case_type_version
    v2 = publish_v2()
    old = SimpleNamespace(case_type=_case(old_id).case_type, case_type_version=v1)
    new = SimpleNamespace(case_type=old.case_type, case_type_version=v2)
    assert versions.case_type_of(old).stage("intake").sla.hours == 4  # type: ignore[union-attr]
    assert versions.case_type_of(new).stage("intake").sla.hours == 2  # type: ignore[union-attr]
    assert versions.case_type_of(SimpleNamespace(case_type=old.case_type)) is get_registry().get(old.case_type)
