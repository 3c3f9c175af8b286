"""A 2xx is only sent after the change is committed: a failing commit turns into a 503, and nothing is stored."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from casemgr import db
from casemgr.cases.models import Case


def test_failed_commit_is_not_acknowledged(agent_client, monkeypatch: pytest.MonkeyPatch) -> None:
    real_commit = db.Session.commit
    state = {"fail": True}

    def flaky_commit(self):  # type: ignore[no-untyped-def]
        if state["fail"]:
            state["fail"] = False
            raise OperationalError("COMMIT", {}, Exception("disk I/O error"))
        return real_commit(self)

    monkeypatch.setattr(db.Session, "commit", flaky_commit)
    r = agent_client.post("/api/cases", json={"case_type": "complaint", "subject": "must not be half-acknowledged"})
    assert r.status_code == 503, r.text
    assert "retry" in r.json()["detail"]
    with db.read_session() as s:
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == 0
    # The retry succeeds and is stored once.
    r = agent_client.post("/api/cases", json={"case_type": "complaint", "subject": "must not be half-acknowledged"})
    assert r.status_code == 201
    with db.read_session() as s:
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == 1
