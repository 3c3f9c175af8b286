"""Publishing, rollback, hot reload across workers, and the impact preview, on a real database."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from casemgr.audit.models import AuditEvent
from casemgr.cli import app
from casemgr.db import read_session, write_session
from casemgr.documents import changes
from casemgr.policyfile import PolicyFileError
from casemgr.rules import store
from casemgr.rules.schema import RuleSource
from casemgr.rules.service import RulesService
from casemgr.runtime import rebuild

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "policies" / "rules"
CC = {"type": "complaint", "category": "credit_card", "urgency": "normal"}


def _variant(tmp_path: Path, name: str, old: str, new: str) -> Path:
    d = tmp_path / name
    d.mkdir()
    for f in RULES.glob("*.yaml"):
        text = f.read_text()
        (d / f.name).write_text(text.replace(old, new) if f.name == "complaints.yaml" else text)
    return d


def test_publish_history_diff_audit_and_rollback(tmp_path: Path) -> None:
    v2dir = _variant(tmp_path, "v2", "queue: complaints-credit-card", "queue: complaints-priority")
    v1, v2 = RuleSource.from_path(RULES), RuleSource.from_path(v2dir)
    with write_session() as s:
        r1 = store.publish(s, v1, author="gov1", reason="initial rules")
    with write_session() as s:
        again = store.publish(s, v1, author="gov1", reason="same again")
        r2 = store.publish(s, v2, author="gov2", reason="credit cards to priority")
    assert r1.changed and not again.changed and r2.changed
    assert "-      queue: complaints-credit-card" in r2.diff and "+      queue: complaints-priority" in r2.diff
    with read_session() as s:
        assert store.active_version(s) == v2.version
        rows = store.history(s)
        assert [(r.version, r.is_active, r.author) for r in rows] == [
            (v2.version, True, "gov2"), (v1.version, False, "gov1")
        ]
        assert rows[0].reason == "credit cards to priority" and rows[0].created_at is not None
        actions = [e.action for e in s.execute(select(AuditEvent)).scalars()]
        assert actions.count("rules.publish") == 2
    svc = RulesService()
    assert svc.evaluate(CC).queue == "complaints-priority"
    with write_session() as s:
        back = store.rollback(s, author="gov1", reason="bad idea")
    assert back.version == v1.version
    assert svc.refresh(force=True) is True
    d = svc.evaluate(CC)
    assert (d.queue, d.ruleset_version) == ("complaints-credit-card", v1.version)
    with write_session() as s:
        assert store.rollback(s, to=v2.version[:6], author="gov1", reason="again").version == v2.version
        with pytest.raises(store.RulesStoreError):
            store.rollback(s, to="ffffffffff", author="gov1", reason="x")
    svc.close()


def test_invalid_publish_is_refused_and_active_version_kept(tmp_path: Path, make_user) -> None:  # type: ignore[no-untyped-def]
    bad = _variant(tmp_path, "bad", "queue: complaints-credit-card", "queue: no-such-queue")
    with write_session() as s:
        store.publish(s, RuleSource.from_path(RULES), author="gov", reason="initial")
    with pytest.raises(PolicyFileError) as exc, write_session() as s:
        store.publish(s, RuleSource.from_path(bad), author="gov", reason="broken")
    assert "complaints.yaml:" in str(exc.value) and "no-such-queue" in str(exc.value)
    with read_session() as s:
        assert store.active_version(s) == RuleSource.from_path(RULES).version
        assert len(store.history(s)) == 1
    lead, _ = make_user("governance")
    res = CliRunner().invoke(app, ["rules", "publish", str(bad), "--author", lead, "--reason", "x"])
    assert res.exit_code == 1 and "not published" in res.output
    with read_session() as s:  # nothing stored, not even a change request
        assert changes.listing(s, kind="rules") == []


class _StillClock:
    """casemgr.documents.live's clock (it reads time.monotonic), standing still until the test moves it: whether a
    check is due no longer depends on how long the steps in between took on a loaded host."""

    def __init__(self) -> None:
        self.t = 1000.0

    def monotonic(self) -> float:
        return self.t


def test_service_polls_at_most_once_per_interval(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from casemgr.documents import live as live_mod

    clock = _StillClock()
    monkeypatch.setattr(live_mod, "time", clock)
    v2dir = _variant(tmp_path, "v2", "queue: complaints-credit-card", "queue: complaints-triage")
    svc = RulesService()
    assert svc.evaluate(CC).queue == "complaints-credit-card"  # files: nothing published yet
    with write_session() as s:
        store.publish(s, RuleSource.from_path(v2dir), author="gov", reason="r")
    svc.live._next_check = clock.t + 0.3
    assert svc.evaluate(CC).queue == "complaints-credit-card"  # not checked yet
    assert not svc.refresh_due()
    clock.t += 0.3
    # Async intake asks first and refreshes on a worker thread, so evaluate() on the event loop reads nothing.
    assert svc.refresh_due()
    assert svc.refresh() and not svc.refresh_due()
    assert svc.evaluate(CC).queue == "complaints-triage"
    clock.t += svc.live.interval_s - 0.01
    assert not svc.refresh_due()  # at most once per interval
    clock.t += 0.01
    assert svc.refresh_due()
    svc.close()


WORKER = """
import json, sys, time
from casemgr.rules import service
service.CHECK_INTERVAL_S = 0.1
facts = {"type": "complaint", "category": "credit_card"}
d = service.evaluate(facts)  # rules loaded before we say ready
seen = [[d.ruleset_version, d.queue]]
deadline = time.monotonic() + 20
print("ready", flush=True)
while time.monotonic() < deadline:
    d = service.evaluate(facts)
    if not seen or seen[-1] != [d.ruleset_version, d.queue]:
        seen.append([d.ruleset_version, d.queue])
    if d.ruleset_version == sys.argv[1]:
        break
print(json.dumps(seen), flush=True)
"""


def test_worker_processes_switch_without_restart(tmp_path: Path, make_user) -> None:  # type: ignore[no-untyped-def]
    v2dir = _variant(tmp_path, "v2", "queue: complaints-credit-card", "queue: complaints-priority")
    v2 = RuleSource.from_path(v2dir)
    env = dict(os.environ)
    procs = [
        subprocess.Popen([sys.executable, "-c", WORKER, v2.version], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    (lead1, _), (lead2, _) = make_user("governance"), make_user("governance")
    runner = CliRunner()
    # Four eyes (issue 21): publish drafts a change request; a second lead's approval publishes it.
    res = runner.invoke(app, ["rules", "publish", str(v2dir), "--author", lead1, "--reason", "switch"])
    assert res.exit_code == 0, res.output
    rid = int(re.search(r"change request (\d+) for rules version " + v2.version, res.output).group(1))  # type: ignore[union-attr]
    with read_session() as s:
        assert store.active_version(s) is None  # not published yet
    res = runner.invoke(app, ["policy", "approve", str(rid), "--author", lead1])
    assert res.exit_code == 1 and "different governance lead" in res.output
    res = runner.invoke(app, ["policy", "approve", str(rid), "--author", lead2, "--comment", "ok"])
    assert res.exit_code == 0, res.output
    assert f"rules version {v2.version} is now active" in res.output
    for p in procs:
        out, _ = p.communicate(timeout=30)
        seen = json.loads(out.strip().splitlines()[-1])
        assert seen[0][1] == "complaints-credit-card"
        assert seen[-1] == [v2.version, "complaints-priority"]


def test_cli_history_and_rollback(tmp_path: Path, make_user, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    # Single-person publish (small installations): the lead's own request is approved and published at once.
    monkeypatch.setenv("CASEMGR_SINGLE_PERSON_PUBLISH", "true")
    rebuild()
    v2dir = _variant(tmp_path, "v2", "sla_hours: 72", "sla_hours: 96")
    lead, _ = make_user("governance")
    runner = CliRunner()
    assert runner.invoke(app, ["rules", "rollback"]).exit_code == 1  # nothing published yet
    res = runner.invoke(app, ["rules", "publish", str(RULES), "--author", lead, "--reason", "first"])
    assert res.exit_code == 0 and "single-person publish" in res.output, res.output
    res = runner.invoke(app, ["rules", "publish", str(RULES), "--author", lead, "--reason", "again"])
    assert res.exit_code == 0 and "already active; nothing published" in res.output, res.output
    res = runner.invoke(app, ["rules", "publish", str(v2dir), "--author", lead, "--reason", "second"])
    assert res.exit_code == 0, res.output
    assert "single-person publish" in res.output and "+" in res.output and "96" in res.output  # the diff is shown
    res = runner.invoke(app, ["rules", "rollback", "--author", "gov", "--reason", "oops"])
    assert res.exit_code == 0 and RuleSource.from_path(RULES).version in res.output
    res = runner.invoke(app, ["rules", "history", "--json"])
    items = json.loads(res.output)
    assert [i["reason"] for i in items] == ["oops", "second", "first"]
    assert [i["active"] for i in items] == [True, False, False]
    assert [i["author"] for i in items] == ["gov", f"user:{lead}", f"user:{lead}"]


def test_cli_publish_needs_a_governance_lead(tmp_path: Path, make_user) -> None:  # type: ignore[no-untyped-def]
    v2dir = _variant(tmp_path, "v2", "sla_hours: 72", "sla_hours: 96")
    agent, _ = make_user("agent")
    runner = CliRunner()
    res = runner.invoke(app, ["rules", "publish", str(v2dir), "--author", "nobody-here", "--reason", "x"])
    assert res.exit_code == 1 and "no active user 'nobody-here'" in res.output
    res = runner.invoke(app, ["rules", "publish", str(v2dir), "--author", agent, "--reason", "x"])
    assert res.exit_code == 1 and "governance" in res.output
    lead, _ = make_user("governance")
    res = runner.invoke(app, ["rules", "publish", str(v2dir), "--author", lead, "--reason", "longer SLA"])
    assert res.exit_code == 0 and "waiting for a second governance lead" in res.output
    with read_session() as s:
        pending = changes.listing(s, status="pending", kind="rules")
        assert [(r.author, r.reason) for r in pending] == [(f"user:{lead}", "longer SLA")]
        assert store.active_version(s) is None
        acts = [e.action for e in s.execute(select(AuditEvent)).scalars()]
    assert "rules.change_requested" in acts and "rules.publish" not in acts


def _add_cases() -> None:
    from casemgr.cases.models import Case

    with write_session() as s:
        for i in range(30):
            cat = ["credit_card", "retail_banking", "debt_collection"][i % 3]
            s.add(Case(case_type="complaint", stage="new", category=cat, urgency="high" if i % 2 else "normal",
                       subject=f"case {i}", channel="email", ai={"classification": {"confidence": 0.9}}))
        s.add(Case(case_type="contract", stage="new", amount=50000, channel="email"))


def test_simulate_counts_moves(tmp_path: Path) -> None:
    _add_cases()
    cand = _variant(tmp_path, "cand", "queue: complaints-credit-card", "queue: complaints-priority")
    res = CliRunner().invoke(app, ["rules", "simulate", str(cand), "--last", "31", "--json"])
    assert res.exit_code == 0, res.output
    rep = json.loads(res.output)
    assert rep["evaluated"] == 31
    assert rep["route_changed"] == 10
    assert rep["queue_moves"] == [{"from": "complaints-credit-card", "to": "complaints-priority", "count": 10}]
    assert rep["priority_changed"] == 0
    res = CliRunner().invoke(app, ["rules", "simulate", str(cand), "--last", "6"])
    assert res.exit_code == 0
    assert "1 of 6 cases would route differently" in res.output
    assert "complaints-credit-card -> complaints-priority: 1" in res.output
    bad = _variant(tmp_path, "bad", "salience: 10", "salience: ten")
    res = CliRunner().invoke(app, ["rules", "simulate", str(bad), "--last", "5"])
    assert res.exit_code == 1 and "salience must be an integer" in res.output


def test_shipped_rules_are_version_1_and_rollback_returns_to_them(tmp_path: Path) -> None:
    from casemgr.documents.enums import BASELINE_AUTHOR

    shipped = RuleSource.from_path(RULES)
    v2 = RuleSource.from_path(_variant(tmp_path, "v2", "queue: complaints-credit-card", "queue: complaints-priority"))
    svc = RulesService()
    with write_session() as s:
        pub = store.publish(s, v2, author="gov", reason="priority queue")
    assert "-      queue: complaints-credit-card" in pub.diff  # diffed against the shipped files
    with read_session() as s:
        rows = store.history(s)
        assert [(r.version, r.is_active, r.author) for r in rows] == [
            (v2.version, True, "gov"), (shipped.version, False, BASELINE_AUTHOR)]
        assert rows[1].files == shipped.files
    assert svc.evaluate(CC).queue == "complaints-priority"
    res = CliRunner().invoke(app, ["rules", "rollback", "--author", "gov", "--reason", "as shipped"])
    assert res.exit_code == 0 and f"active rules version is now {shipped.version}" in res.output, res.output
    assert svc.refresh(force=True) is True
    d = svc.evaluate(CC)
    assert (d.queue, d.ruleset_version) == ("complaints-credit-card", shipped.version)
    svc.close()
