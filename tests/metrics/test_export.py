"""Process-mining export: the XES loads in pm4py and its inductive miner runs on it; CSV has the same events."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from casemgr.db import read_session

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def demo() -> None:
    from casemgr.demo import seed_cases

    seed_cases(n_complaints=40, n_contracts=15)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "casemgr.cli", *args], cwd=ROOT, env=os.environ.copy(),
                          capture_output=True, text=True, timeout=120)


def test_xes_loads_in_pm4py_and_discovery_runs(demo: None, tmp_path: Path) -> None:
    pm4py = pytest.importorskip("pm4py")
    out = tmp_path / "events.xes"
    r = _cli("export", "events", "--format", "xes", "--out", str(out))
    assert r.returncode == 0, r.stderr
    with read_session() as s:
        n_events = s.execute(text("SELECT count(*) FROM stage_history")).scalar_one()
        n_cases = s.execute(text("SELECT count(*) FROM cases")).scalar_one()
        first = s.execute(text("SELECT reference, stage FROM cases WHERE id = 1")).one()
    log = pm4py.read_xes(str(out))
    assert len(log) == n_events
    assert log["case:concept:name"].nunique() == n_cases
    assert {"concept:name", "time:timestamp", "org:resource"} <= set(log.columns)
    # Events of a trace are in time order and the first one is the type's first stage.
    trace = log[log["case:concept:name"] == first.reference]
    assert list(trace["time:timestamp"]) == sorted(trace["time:timestamp"])
    assert trace["concept:name"].iloc[0] in ("intake", "request")
    tree = pm4py.discover_process_tree_inductive(log)
    net, im, fm = pm4py.convert_to_petri_net(tree)
    activities = {t.label for t in net.transitions if t.label}
    assert {"intake", "triage", "request", "drafting"} <= activities
    fitness = pm4py.fitness_token_based_replay(log, net, im, fm)
    assert fitness["log_fitness"] > 0.99  # the inductive miner guarantees a fitting model


def test_csv_export_has_case_activity_timestamp_resource(demo: None, tmp_path: Path) -> None:
    out = tmp_path / "events.csv"
    r = _cli("export", "events", "--format", "csv", "--out", str(out), "--with-audit")
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.open(encoding="utf-8")))
    assert {"case_id", "activity", "timestamp", "resource"} <= set(rows[0])
    with read_session() as s:
        n_events = s.execute(text("SELECT count(*) FROM stage_history")).scalar_one()
    stage_rows = [r for r in rows if "." not in r["activity"]]
    assert len(stage_rows) == n_events
    assert _cli("export", "events", "--format", "pdf").returncode == 2
