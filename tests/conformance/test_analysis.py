"""The replay of one trace against a design, and the aggregate figures (pure: no database)."""

from __future__ import annotations

from casemgr.casetypes.registry import get_registry
from casemgr.conformance.analysis import Trace, Visit, analyse, replay
from casemgr.conformance.model import design_of

H = 3600.0


def _trace(ct: str, stages: list[str], *, step_h: float = 2.0, open_last: bool = True, work: list[float] | None = None,
           cid: int = 1) -> Trace:
    visits, t = [], 0.0
    for i, s in enumerate(stages):
        last = i == len(stages) - 1
        visits.append(Visit(s, t, None if (last and open_last) else t + step_h * H))
        t += step_h * H
    return Trace(cid, ct, visits, sorted(work or []))


def test_designed_path_conforms_and_undesigned_move_does_not() -> None:
    d = design_of(get_registry().get("complaint"))
    ok = replay(d, _trace("complaint", ["intake", "triage", "investigation", "resolution"]), at=100 * H)
    assert ok.conforming and not ok.completed and not ok.undesigned
    bad = replay(d, _trace("complaint", ["intake", "investigation", "resolution"]), at=100 * H)
    assert not bad.conforming and bad.undesigned == [("intake", "investigation")]
    assert bad.skips == [("intake", "investigation", ("triage",))]
    start = replay(d, _trace("complaint", ["triage", "resolution"]), at=100 * H)
    assert start.wrong_start and not start.conforming and not start.undesigned


def test_skips_count_work_stages_only_and_not_other_ways_out() -> None:
    d = design_of(get_registry().get("complaint"))
    # triage -> resolution passes investigation; waiting_on_customer is optional, not skipped work.
    assert d.skipped("triage", "resolution") == ["investigation"]
    assert d.skipped("intake", "closed") == ["triage", "investigation", "resolution", "feedback"]
    ob = design_of(get_registry().get("onboarding"))
    assert ob.skipped("hr_setup", "cancelled") == []  # cancelled is another way out, not the normal end
    assert ob.is_back("it_setup", "hr_setup") and not ob.is_back("hr_setup", "it_setup")


def test_rework_time_is_the_repeat_visits_and_an_open_one_counts_until_now() -> None:
    d = design_of(get_registry().get("complaint"))
    t = _trace("complaint", ["intake", "triage", "investigation", "triage", "investigation"], step_h=3.0)
    # The last investigation visit is open since 12 h; `at` is 20 h: it has lost 8 h so far.
    r = replay(d, t, at=20 * H)
    assert r.conforming
    assert r.rework == {"triage": (1, 3 * H), "investigation": (1, 8 * H)}
    assert r.backs == [("investigation", "triage")]


def test_handoff_delay_runs_to_the_first_work_event_or_the_stage_exit() -> None:
    d = design_of(get_registry().get("onboarding"))
    # hr_setup 0-4 h, it_setup entered at 4 h: IT's first work at 5.5 h -> 1.5 h; first_week entered at 8 h
    # with no work before it left at 12 h -> 4 h; payroll entered at 12 h, still open at 15 h -> waiting.
    t = _trace("onboarding", ["hr_setup", "it_setup", "first_week", "payroll"], step_h=4.0, work=[1 * H, 5.5 * H])
    r = replay(d, t, at=15 * H)
    assert r.handoffs == [("hr", "it", 1.5 * H, False), ("it", "manager", 4 * H, False),
                          ("manager", "payroll", 3 * H, True)]


def test_aggregate_shares_deviations_and_never_used_stages() -> None:
    reg = get_registry()
    designs = {"complaint": design_of(reg.get("complaint"))}
    traces = [
        _trace("complaint", ["intake", "triage", "resolution", "feedback", "closed"], cid=1, open_last=False),
        _trace("complaint", ["intake", "triage", "resolution"], cid=2),
        _trace("complaint", ["intake", "investigation"], cid=3),
        _trace("complaint", ["intake", "triage", "investigation", "triage"], cid=4),
        _trace("other_type_gone_from_yaml", ["x", "y"], cid=5),
    ]
    out = analyse(designs, traces, at=100 * H)["complaint"]
    assert (out["cases"], out["conforming"], out["completed"], out["completed_conforming"]) == (4, 3, 1, 1)
    assert out["conformance"] == 0.75
    top = out["deviations"][0]
    assert (top["kind"], top["what"], top["cases"]) == ("skipped_stage", "investigation", 2)
    assert {"kind": "undesigned_move", "what": "intake → investigation", "cases": 1, "share": 0.25} in out["deviations"]
    assert out["never_used_stages"] == ["waiting_on_customer"]
    assert out["cases_with_rework"] == 1
    assert out["back_transitions"] == [{"from": "investigation", "to": "triage", "cases": 1, "designed": True}]
