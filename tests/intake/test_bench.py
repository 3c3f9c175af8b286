"""The intake bench runs both paths against their floors and ends with the contract line (small n here)."""

from __future__ import annotations

import json
import os

from typer.testing import CliRunner


def test_bench_intake_cli_small(fresh_db: object, monkeypatch: object) -> None:
    from casemgr.cli import app

    monkeypatch.setenv("CASEMGR_AI_INLINE", "false")  # type: ignore[attr-defined]  # keep the test fast

    before = os.environ.get("CASEMGR_DATA_DIR")
    res = CliRunner().invoke(app, ["bench", "intake", "--n", "8", "--json"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(x) for x in res.stdout.strip().splitlines()]
    assert [x.get("path") for x in lines[:2]] == ["smtp", "api"]
    for x in lines[:2]:
        assert x["n"] == 8 and x["cases_per_s"] > 0 and x["floor_per_s"] > 0 and x["p99_ms"] > 0
    last = lines[-1]
    assert set(last) == {"bench", "cases_per_s", "floor_per_s", "ratio", "p99_ms", "api", "smtp", "ai_drain_per_s",
                         "ai_drain_per_s_by_workers", "load_avg_1m_before", "load_avg_1m_after"} and last["bench"] == "intake"
    assert last["load_avg_1m_before"] >= 0 and last["load_avg_1m_after"] >= 0
    assert last["ai_drain_per_s"] > 0
    assert set(last["smtp"]) == {"messages_per_s", "ratio", "p99_ms", "floor_per_s", "ratio_total",
                                 "ratio_to_api_floor", "rounds"}
    assert last["smtp"]["messages_per_s"] == lines[0]["cases_per_s"] > 0 and last["smtp"]["ratio"] == lines[0]["ratio"]
    assert last["ratio"] == last["api"]["ratio"] == lines[1]["ratio"] and last["api"]["p99_ms"] == last["p99_ms"]
    for line in lines[:2]:  # floor and path measured in paired rounds; each pair's figures are reported
        assert line["rounds"] and all(r["floor_per_s"] > 0 and r["per_s"] > 0 for r in line["rounds"])
        assert sum(r["n"] for r in line["rounds"]) == 8
    assert os.environ.get("CASEMGR_DATA_DIR") == before  # the bench ran in its own throw-away data dir
