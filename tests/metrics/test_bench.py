"""The dashboard bench runs end to end on a small generated data set and reports the agreed JSON fields."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.sqlite_only
def test_bench_dashboard_json_line() -> None:
    r = subprocess.run([sys.executable, "-m", "casemgr.cli", "bench", "dashboard", "--cases", "2000", "--json"],
                       cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True, timeout=170)
    assert r.returncode == 0, r.stderr
    lines = [x for x in r.stdout.splitlines() if x.strip()]
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert out["bench"] == "dashboard" and out["cases"] == 2000
    assert out["queue_p95_ms"] > 0 and out["dashboard_ms"] > 0


def test_generated_cases_are_consistent() -> None:
    from casemgr.bench.dashboard import generate

    rows = list(generate(500))
    assert len(rows) == 500
    for case, hist in rows:
        assert hist[0][4] == case[22]  # first stage entered when created
        assert hist[-1][2] == case[3] and hist[-1][5] is None  # current stage is the open visit
        assert all(h[5] is not None for h in hist[:-1])


@pytest.mark.sqlite_only
def test_bench_jobs_times_every_background_job_and_the_refresh_follows_the_changes() -> None:
    """`casemgr bench jobs`: each periodic job ran through the worker path with its write transactions timed under
    its kind, and the refresh after K stage moves claimed exactly the K visits they finished (figures, no timing)."""
    from casemgr.bench import jobs

    res = jobs.run(1500, changes=25, catch_up_chunks=2)
    assert res["cases"] == 1500 and res["changes"] == 25
    catch_up = res["jobs"]["metrics.refresh catch-up, 2 chunks"]
    assert catch_up["write_txns"] == 2 and catch_up["visits_rolled"] > 0
    for kind in jobs.PERIODIC:
        assert res["jobs"][kind]["outcome"] == ["done"], (kind, res["jobs"][kind])
    for kind in ("sla.scan", "metrics.refresh", "conformance.refresh"):
        assert res["jobs"][kind]["write_txns"] >= 1, (kind, res["jobs"][kind])
    after = res["jobs"]["metrics.refresh after 25 changes"]
    assert after["visits_rolled"] == 25
    assert res["worst_write_txn_ms"] == max(v["max_ms"] for v in res["jobs"].values())
