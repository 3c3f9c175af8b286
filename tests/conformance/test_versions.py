"""Conformance with versioned case types (issue 22): a running case stays on the version it started with, so its
moves are replayed against that version's design, not against a later publish that changed the stages."""

from __future__ import annotations

from casemgr.cases import service
from casemgr.cases.models import Case
from casemgr.casetypes.registry import get_registry
from casemgr.conformance.analysis import replay
from casemgr.conformance.log import iter_traces
from casemgr.conformance.model import design_of
from casemgr.conformance.service import report
from casemgr.db import read_session, write_session
from tests.casetypes.helpers import publish_v2


def _move(case_id: int, *stages: str, code: str | None = None) -> None:
    for to in stages:
        with write_session() as s:
            c = s.get(Case, case_id)
            assert c is not None
            service.transition(s, case_id, to, c.version, "user:test", resolution_code=code if to == "closed" else None)


def test_each_case_is_replayed_against_its_pinned_version(make_case) -> None:  # type: ignore[no-untyped-def]
    old = make_case(subject="opened on v1")
    publish_v2()  # v2 drops the feedback stage: resolution closes
    new = make_case(subject="opened on v2")
    _move(old, "triage", "resolution", "feedback")  # designed in v1
    _move(new, "triage", "resolution", "closed", code="billing_error")  # designed in v2
    with read_session() as s:
        r = report(s, case_type="complaint")["case_types"]["complaint"]
        traces = {t.case_id: t for t in iter_traces(s, case_type="complaint")}
    assert (r["cases"], r["conforming"]) == (2, 2)
    assert not [d for d in r["deviations"] if d["kind"] == "undesigned_move"]
    # Against the version in force alone, the v1 case would count as deviating (feedback is gone in v2).
    in_force = design_of(get_registry().get("complaint"))
    assert "feedback" not in in_force.stages
    assert not replay(in_force, traces[old], at=0.0).conforming
    assert replay(in_force, traces[new], at=0.0).conforming
