"""Acceptance (issue 22): the conformance figures equal pm4py's token-based replay on the same XES export.

The demo's cases moved through the app, which allows only designed transitions; cases whose history came from
elsewhere (an import, an older version of a type) add deviations: undesigned moves, a wrong start, rework loops.
pm4py replays the exported log on a Petri net built from case-types.yaml (tests/conformance/helpers.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from casemgr.casetypes.registry import get_registry
from casemgr.clock import now

from .helpers import imported_case, petri_net

ROOT = Path(__file__).resolve().parents[2]
DEVIATING = {
    "complaint": [["intake", "investigation", "resolution"], ["triage", "resolution", "feedback", "closed"],
                  ["intake", "triage", "resolution", "triage"]],
    "contract": [["request", "approval", "signature"]],
    "onboarding": [["hr_setup", "first_week", "payroll"]],
    "invoice": [["received", "approval", "posting", "payment", "paid"]],
}
CONFORMING_REWORK = {
    "complaint": [["intake", "triage", "investigation", "triage", "investigation", "resolution", "feedback", "closed"]],
    "onboarding": [["hr_setup", "it_setup", "hr_setup", "it_setup", "first_week", "payroll", "completed"]],
}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "casemgr.cli", *args], cwd=ROOT, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def log_with_deviations() -> dict[str, int]:
    import random

    from casemgr.demo import seed_cases, seed_process_cases

    seed_cases(n_complaints=40, n_contracts=15)
    seed_process_cases(random.Random(7), now() - timedelta(days=90), per_type=8)
    t0 = now() - timedelta(days=20)
    n = 0
    for group in (DEVIATING, CONFORMING_REWORK):
        for ct, paths in group.items():
            for path in paths:
                imported_case(ct, path, t0 + timedelta(hours=n), closed=path[-1] in ("closed", "paid", "completed"))
                n += 1
    return {ct: len(paths) for ct, paths in DEVIATING.items()}


def test_conformance_equals_pm4py_token_replay(log_with_deviations: dict[str, int], tmp_path: Path) -> None:
    pm4py = pytest.importorskip("pm4py")
    xes = tmp_path / "events.xes"
    r = _cli("export", "events", "--format", "xes", "--out", str(xes))
    assert r.returncode == 0, r.stderr
    r = _cli("export", "conformance", "--json")
    assert r.returncode == 0, r.stderr
    report = json.loads(r.stdout)["case_types"]
    log = pm4py.read_xes(str(xes))
    registry = get_registry()
    assert set(report) == set(registry.case_types)
    for name, ct in registry.case_types.items():
        sub = log[log["case:case:type"] == name]
        ours = report[name]
        assert ours["cases"] == sub["case:concept:name"].nunique() > 0, name
        # Any designed path, stopping anywhere: fit traces are exactly the conforming cases.
        net, im, fm = petri_net(pm4py, ct, stop_anywhere=True)
        diag = pm4py.conformance_diagnostics_token_based_replay(sub, net, im, fm)
        assert len(diag) == ours["cases"]
        fit = sum(1 for d in diag if d["trace_is_fit"])
        assert fit == ours["conforming"], (name, fit, ours)
        assert ours["conforming"] == ours["cases"] - log_with_deviations[name]  # the deviations were found
        fitness = pm4py.fitness_token_based_replay(sub, net, im, fm)
        assert fitness["perc_fit_traces"] == pytest.approx(100.0 * ours["conformance"])
        # Only a final stage may end a trace: fit traces are the conforming cases that completed.
        net, im, fm = petri_net(pm4py, ct, stop_anywhere=False)
        strict = pm4py.conformance_diagnostics_token_based_replay(sub, net, im, fm)
        assert sum(1 for d in strict if d["trace_is_fit"]) == ours["completed_conforming"], name
    complaint = report["complaint"]
    kinds = {(d["kind"], d["what"]) for d in complaint["deviations"]}
    assert ("undesigned_move", "intake → investigation") in kinds
    assert ("undesigned_move", "resolution → triage") in kinds
    assert ("wrong_start", "triage") in kinds
    assert ("rework_loop", "triage") in kinds and ("rework_loop", "investigation") in kinds
    assert complaint["rework_hours_lost"] >= 10.0  # two repeat visits of five hours each
    onboarding = report["onboarding"]
    assert {"from": "hr_setup", "to": "first_week", "cases": 1, "skipped": ["it_setup"]} in onboarding["skips"]
    assert any(h["from_role"] == "hr" and h["to_role"] == "it" for h in onboarding["handoffs"])
