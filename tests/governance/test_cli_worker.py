"""`casemgr policy …` on a real database, and the worker running `ai.enrich` jobs."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from casemgr.cases.models import Case
from casemgr.cli import app
from casemgr.db import read_session, write_session
from casemgr.governance import enrich, service
from casemgr.governance.decide import AIOutput
from casemgr.jobs.service import enqueue

from .util import POLICY_FILE, StubProvider, new_case, policy_text

runner = CliRunner()


@pytest.mark.usefixtures("single_person_publish")  # publish mechanics; four eyes: test_four_eyes.py
def test_policy_cli_check_simulate_publish_rollback(tmp_path, make_user) -> None:  # type: ignore[no-untyped-def]
    gov, _ = make_user("governance")
    agent, _ = make_user("agent")
    r = runner.invoke(app, ["policy", "check"])
    assert r.exit_code == 0 and "OK, version" in r.output
    bad = tmp_path / "bad.yaml"
    bad.write_text(POLICY_FILE.read_text().replace("sample_rate: 0.1", "sample_rate: 7"))
    r = runner.invoke(app, ["policy", "check", str(bad)])
    assert r.exit_code == 2 and f"{bad}:17: review.sample_rate" in r.output
    ids = []
    with write_session() as s:
        for i in range(5):
            case = new_case(s, subject=f"c{i}", route=False)
            ids.append(case.id)
            service.record_decision(s, case, AIOutput(kind="set_priority", value={"priority": "high"},
                                                      confidence=0.9), route=False)
    strict = tmp_path / "strict.yaml"
    strict.write_text(policy_text(lambda d: d["decisions"].update(set_priority={"mode": "suggest", "owner": "lead"})))
    r = runner.invoke(app, ["policy", "simulate", str(strict), "--last", "50"])
    assert r.exit_code == 0 and "applied->suggested: 5" in r.output and "lead: 0 -> 5" in r.output
    # Each change with its example cases, newest first (the cases have no category).
    assert f"set_priority / (none) / applied->suggested: 5; cases {', '.join(map(str, reversed(ids)))}" in r.output
    r = runner.invoke(app, ["policy", "diff", str(strict)])
    assert r.exit_code == 0 and "decisions.set_priority.mode: 'auto' -> 'suggest'" in r.output
    r = runner.invoke(app, ["policy", "publish", str(strict), "--reason", "x", "--author", agent])
    assert r.exit_code == 1 and "governance" in r.output
    r = runner.invoke(app, ["policy", "publish", str(bad), "--reason", "x", "--author", gov])
    assert r.exit_code == 2
    assert runner.invoke(app, ["policy", "publish", "--reason", "baseline", "--author", gov]).exit_code == 0
    r = runner.invoke(app, ["policy", "publish", str(strict), "--reason", "stricter", "--author", gov])
    assert r.exit_code == 0 and r.output.startswith("published")
    r = runner.invoke(app, ["policy", "replay", "--last", "50", "--author", gov, "--json"])
    assert r.exit_code == 0 and '"suggested": 5' in r.output
    r = runner.invoke(app, ["policy", "rollback", "--reason", "undo", "--author", gov])
    assert r.exit_code == 0
    r = runner.invoke(app, ["policy", "versions"])
    assert r.output.splitlines()[0].startswith("*") and "undo" in r.output
    out = tmp_path / "over.csv"
    assert runner.invoke(app, ["policy", "export-overrides", "--out", str(out)]).exit_code == 0
    assert out.read_text().splitlines() == ["text,label"]


def test_worker_runs_ai_enrich_jobs() -> None:
    from casemgr.worker import Worker, load_handlers

    load_handlers()
    enrich.set_provider_factory(lambda: StubProvider())
    try:
        with write_session() as s:
            case = new_case(s)
            enqueue(s, "ai.enrich", {"case_id": case.id, "attempt": 0}, idempotency_key=f"ai.enrich:{case.id}:0")
            cid = case.id
        stats = Worker(schedule=False, poll_s=0.01).run(once=True)
        assert stats["done"] == 1
        with read_session() as s:
            c = s.get(Case, cid)
            assert c.ai_status == "ok" and c.category == "credit_card"
    finally:
        enrich.set_provider_factory(None)
