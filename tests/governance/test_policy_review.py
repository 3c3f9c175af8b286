"""review_by enforced (issue 21): overdue after the date on the governance page and the dashboard; a review is
a recorded (audited) event that moves the next review date. Dates come from casemgr.clock (time-machine)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from casemgr.audit.models import AuditEvent
from casemgr.cli import app as cli
from casemgr.db import read_session
from casemgr.governance.policy import active_policy
from tests.web._helpers import HTML, login


def _due() -> date:
    with read_session() as s:
        return active_policy(s).model.review_by


def test_overdue_after_review_by_and_a_review_clears_it(app, make_user) -> None:  # type: ignore[no-untyped-def]
    due = _due()
    gov, pw = make_user("governance", "lead")
    with time_machine.travel(datetime.combine(due, datetime.min.time(), UTC) + timedelta(hours=12), tick=False):
        c = TestClient(app)
        csrf = login(c, gov, pw)
        assert c.get("/api/policy/ai/review").json()["overdue"] is False
        assert 'id="review-overdue"' not in c.get("/governance/policy", headers=HTML).text
        assert 'id="review-overdue"' not in c.get("/dashboard", headers=HTML).text
    later = datetime.combine(due + timedelta(days=3), datetime.min.time(), UTC) + timedelta(hours=12)
    with time_machine.travel(later, tick=False):
        c = TestClient(app)  # a new login: sessions do not last days
        csrf = login(c, gov, pw)
        state = c.get("/api/policy/ai/review").json()
        assert state["overdue"] is True and state["days_overdue"] == 3
        assert 'id="review-overdue"' in c.get("/governance/policy", headers=HTML).text
        assert 'id="review-overdue"' in c.get("/dashboard", headers=HTML).text
        # Bad dates are refused: in the past, or more than a year ahead.
        for bad in (due.isoformat(), (later.date() + timedelta(days=400)).isoformat()):
            r = c.post("/api/policy/ai/review", json={"comment": "x", "next_review_by": bad},
                       headers={"X-CSRF-Token": csrf})
            assert r.status_code == 422, r.text
        nxt = later.date() + timedelta(days=180)
        r = c.post("/governance/policy/review", data={"comment": "thresholds checked against Q3 overrides",
                                                       "next_review_by": nxt.isoformat(), "csrf_token": csrf},
                   headers=HTML, follow_redirects=True)
        assert r.status_code == 200 and "Review recorded" in r.text and 'id="review-overdue"' not in r.text
        assert c.get("/api/policy/ai/review").json()["review_by"] == nxt.isoformat()
        with read_session() as s:
            ev = s.execute(select(AuditEvent).where(AuditEvent.action == "ai-policy.reviewed")).scalars().one()
            assert ev.actor == f"user:{gov}" and ev.before["overdue"] is True
    with time_machine.travel(later + timedelta(days=181), tick=False):
        c = TestClient(app)
        login(c, gov, pw)
        assert c.get("/api/policy/ai/review").json()["overdue"] is True


def test_cli_reviewed_needs_governance(make_user) -> None:  # type: ignore[no-untyped-def]
    gov, _ = make_user("governance")
    agent, _ = make_user("agent")
    runner = CliRunner()
    with time_machine.travel(datetime.combine(_due() + timedelta(days=1), datetime.min.time(), UTC), tick=False):
        nxt = (_due() + timedelta(days=90)).isoformat()
        r = runner.invoke(cli, ["policy", "reviewed", "--comment", "ok", "--next", nxt, "--author", agent])
        assert r.exit_code == 1 and "governance" in r.output
        r = runner.invoke(cli, ["policy", "reviewed", "--comment", "ok", "--next", nxt, "--author", gov])
        assert r.exit_code == 0 and f"next review by {nxt}" in r.output, r.output
