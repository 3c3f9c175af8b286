"""`casemgr bench review` runs end to end on a small population (its timing is only reported, never asserted)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from casemgr.cli import app


def test_bench_review_json() -> None:
    r = CliRunner().invoke(app, ["bench", "review", "--decisions", "200", "--requests", "14", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output.strip().splitlines()[-1])
    assert out["bench"] == "review" and out["open_decisions"] == 200 and out["target_ms"] == 300.0
    assert set(out["per_url_p95_ms"]) >= {"/api/review/queue", "/review"} and out["p95_ms"] > 0
