"""Owner matrix and the owner-gap report (issue 21): a governed kind whose owner role no active user holds."""

from __future__ import annotations

from fastapi.testclient import TestClient

from casemgr.db import read_session, write_session
from casemgr.governance import kinds
from casemgr.governance.owners import owner_matrix
from casemgr.users import service as users
from casemgr.users.models import User
from tests.web._helpers import HTML, login


def _matrix() -> dict:  # type: ignore[type-arg]
    with read_session() as s:
        return owner_matrix(s)


def test_owner_gap_report(make_user) -> None:  # type: ignore[no-untyped-def]
    agent, _ = make_user("agent")
    m = _matrix()
    rows = {r["kind"]: r for r in m["rows"]}
    assert set(rows) == {k.name for k in kinds.all_kinds()}  # every registered kind, from the registry
    assert rows["draft_reply"]["owner"] == "agent" and rows["draft_reply"]["people"] == [agent]
    assert not rows["draft_reply"]["gap"]
    assert rows["approve_refund"]["owner"] == "finance" and rows["approve_refund"]["gap"]  # nobody in finance
    assert "approve_refund" in m["gaps"] and "draft_reply" not in m["gaps"]
    # A kind the policy says AI never decides is no gap, whoever holds its role.
    assert rows["approve_contract"]["mode"] == "never" and not rows["approve_contract"]["gap"]
    fin, _ = make_user("finance")
    assert "approve_refund" not in _matrix()["gaps"]
    with write_session() as s:  # a deactivated user holds no role today
        u = users.get_user_by_name(s, fin)
        assert isinstance(u, User)
        u.active = False
        s.add(u)
    assert "approve_refund" in _matrix()["gaps"]


def test_owner_page_and_api(app, make_user) -> None:  # type: ignore[no-untyped-def]
    name, pw = make_user("governance")
    c = TestClient(app)
    login(c, name, pw)
    page = c.get("/governance/owners", headers=HTML)
    assert page.status_code == 200 and 'id="owner-gaps"' in page.text and 'id="owner-approve_refund"' in page.text
    assert "approve_refund" in c.get("/api/policy/ai/owners").json()["gaps"]
