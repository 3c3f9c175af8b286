"""`casemgr bench scaleout` on PostgreSQL: apps behind the round-robin balancer, workers draining, nothing lost or
doubled (issue 23). A smoke run of the benchmark's machinery; the figures themselves are not asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PG_URL = os.environ.get("CASEMGR_TEST_DATABASE_URL")


@pytest.mark.slow
@pytest.mark.skipif(not PG_URL, reason="needs CASEMGR_TEST_DATABASE_URL (PostgreSQL)")
def test_scaleout_reports_every_combination_and_stores_each_request_once() -> None:
    r = subprocess.run([sys.executable, "-m", "casemgr.cli", "bench", "scaleout", "--apps", "1,2", "--workers", "1",
                        "--n", "40", "--clients", "8", "--database-url", str(PG_URL), "--json"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout.strip().splitlines()[-1])
    assert [(x["apps"], x["workers"]) for x in res["lines"]] == [(1, 1), (2, 1)]
    for x in res["lines"]:
        assert x["errors"] == 0 and x["statuses"] == {"201": 40}
        assert x["stored_once"] and x["stored"] == x["accepted"] == 40 + 40  # measured requests + warm-up
        assert x["ai_left"] == 0 and x["ai_jobs"] >= 80
    assert res["all_stored_once"] is True


def test_scaleout_refuses_sqlite() -> None:
    r = subprocess.run([sys.executable, "-m", "casemgr.cli", "bench", "scaleout", "--database-url",
                        "sqlite:////tmp/x.db"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "needs PostgreSQL" in r.stderr
