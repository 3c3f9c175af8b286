"""Four eyes (issue 21): a governance lead drafts a change, a different lead approves or rejects it, every step
audited; the author (or an admin who granted themselves the role) can never approve their own change."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from casemgr.audit.models import AuditEvent
from casemgr.cli import app as cli
from casemgr.db import read_session, write_session
from casemgr.documents import changes
from casemgr.governance import store
from casemgr.runtime import rebuild
from casemgr.users import service as users
from tests.web._helpers import HTML, login

from .util import policy_text

STRICT = policy_text(lambda d: d["decisions"].update(set_priority={"mode": "suggest", "owner": "lead"}))


def _client(app, api_key, *roles: str) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(app, headers={"X-API-Key": api_key(*roles)})


def _actions() -> list[str]:
    with read_session() as s:
        return list(s.execute(select(AuditEvent.action).order_by(AuditEvent.seq)).scalars())


def test_first_lead_cannot_approve_own_request_second_lead_publishes(app, api_key) -> None:  # type: ignore[no-untyped-def]
    first, second = _client(app, api_key, "governance"), _client(app, api_key, "governance")
    with read_session() as s:
        before = store.active_version(s)
    r = first.post("/api/policy/ai/publish", json={"text": STRICT, "reason": "set_priority needs a lead"})
    assert r.status_code == 200, r.text
    req = r.json()["request"]
    assert r.json()["status"] == "pending" and r.json()["changed"] is False
    with read_session() as s:
        assert store.active_version(s) == before  # nothing published yet
    # The author may not approve (403, with why) and the request says so before anyone tries.
    shown = first.get(f"/api/changes/{req['id']}").json()
    assert shown["can_decide"] is False and "four eyes" in shown["why_not"]
    r = first.post(f"/api/changes/{req['id']}/approve", json={"comment": "mine"})
    assert r.status_code == 403 and "different governance lead" in r.json()["detail"]
    assert second.get(f"/api/changes/{req['id']}").json()["can_decide"] is True
    r = second.post(f"/api/changes/{req['id']}/approve", json={"comment": "looks right"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "published" and r.json()["published_version"] == req["version"]
    with read_session() as s:
        assert store.active_version(s) == req["version"]
        pub = s.execute(select(AuditEvent).where(AuditEvent.action == "ai-policy.publish")).scalars().one()
        assert pub.after["approved_by"] == "apikey:test-2"
        assert pub.actor == "apikey:test-1"  # the version's author is the drafting lead
    acts = _actions()
    assert acts.index("ai-policy.change_requested") < acts.index("ai-policy.publish") \
        < acts.index("ai-policy.change_approved")
    # Decided once: a second approval is a conflict, not a second publish.
    assert second.post(f"/api/changes/{req['id']}/approve", json={}).status_code == 409
    listed = second.get("/api/changes", params={"status": "published"}).json()
    assert [x["id"] for x in listed] == [req["id"]] and listed[0]["decided_by"] == "apikey:test-2"


def test_reject_needs_a_comment_and_publishes_nothing(app, api_key) -> None:  # type: ignore[no-untyped-def]
    first, second = _client(app, api_key, "governance"), _client(app, api_key, "governance")
    reviewer = _client(app, api_key, "reviewer")
    req = first.post("/api/policy/ai/publish", json={"text": STRICT, "reason": "r"}).json()["request"]
    assert reviewer.post(f"/api/changes/{req['id']}/approve", json={}).status_code == 403  # not a lead
    assert reviewer.get(f"/api/changes/{req['id']}").json()["can_decide"] is False
    assert second.post(f"/api/changes/{req['id']}/reject", json={"comment": ""}).status_code == 422
    r = second.post(f"/api/changes/{req['id']}/reject", json={"comment": "too strict for the pilot"})
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    with read_session() as s:
        assert store.active_version(s) is None  # still the shipped file
    assert "ai-policy.change_rejected" in _actions() and "ai-policy.publish" not in _actions()
    assert second.post(f"/api/changes/{req['id']}/approve", json={}).status_code == 409
    assert second.post("/api/changes/999999/approve", json={}).status_code == 404


def test_invalid_candidate_is_never_stored(app, api_key) -> None:  # type: ignore[no-untyped-def]
    first = _client(app, api_key, "governance")
    bad = STRICT.replace("sample_rate: 0.1", "sample_rate: 7")
    r = first.post("/api/policy/ai/publish", json={"text": bad, "reason": "r"})
    assert r.status_code == 422 and r.json()["problems"][0]["line"] > 0
    assert first.get("/api/changes").json() == []


def test_admin_who_granted_themselves_the_role_cannot_approve(app, api_key, make_user) -> None:  # type: ignore[no-untyped-def]
    first = _client(app, api_key, "governance")
    req = first.post("/api/policy/ai/publish", json={"text": STRICT, "reason": "r"}).json()["request"]
    admin, pw = make_user("admin")
    with write_session() as s:
        u = users.get_user_by_name(s, admin)
        assert u is not None
        users.set_roles(s, u.id or 0, ["admin", "governance"], actor=f"user:{admin}")  # self-granted
    c = TestClient(app)
    csrf = login(c, admin, pw)
    r = c.post(f"/api/changes/{req['id']}/approve", json={}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 403 and "granted yourself" in r.json()["detail"]
    page = c.get("/governance/policy", headers=HTML).text
    assert f'id="approve-{req["id"]}"' not in page and f'id="why-not-{req["id"]}"' in page
    # Once another admin grants it, the role counts.
    other, _ = make_user("admin")
    with write_session() as s:
        u = users.get_user_by_name(s, admin)
        users.set_roles(s, u.id or 0, ["admin"], actor=f"user:{other}")  # type: ignore[union-attr]
        users.set_roles(s, u.id or 0, ["admin", "governance"], actor=f"user:{other}")  # type: ignore[union-attr]
    r = c.post(f"/api/changes/{req['id']}/approve", json={}, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200, r.text


def test_approval_after_someone_else_published_is_refused(app, api_key) -> None:  # type: ignore[no-untyped-def]
    a, b, c = (_client(app, api_key, "governance") for _ in range(3))
    r1 = a.post("/api/policy/ai/publish", json={"text": STRICT, "reason": "one"}).json()["request"]
    other = policy_text(lambda d: d["review"].update(sample_rate=0.5))
    r2 = b.post("/api/policy/ai/publish", json={"text": other, "reason": "two"}).json()["request"]
    assert c.post(f"/api/changes/{r1['id']}/approve", json={}).status_code == 200
    r = c.post(f"/api/changes/{r2['id']}/approve", json={})
    assert r.status_code == 409 and "draft it again" in r.json()["detail"]


def test_single_person_publish_setting(app, api_key, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CASEMGR_SINGLE_PERSON_PUBLISH", "true")
    rebuild()
    lead = _client(app, api_key, "governance")
    r = lead.post("/api/policy/ai/publish", json={"text": STRICT, "reason": "small office"})
    assert r.status_code == 200 and r.json()["status"] == "published" and r.json()["changed"] is True
    with read_session() as s:
        assert store.active_version(s) == r.json()["version"]
        ev = s.execute(select(AuditEvent).where(AuditEvent.action == "ai-policy.change_approved")).scalars().one()
        assert ev.after["single_person"] is True


def test_rules_change_goes_through_a_request(app, api_key) -> None:  # type: ignore[no-untyped-def]
    from casemgr.rules import store as rules_store

    first, second = _client(app, api_key, "governance"), _client(app, api_key, "governance")
    files = first.get("/api/rules").json()["files"]
    name = sorted(files)[0]
    changed = {**files, name: files[name] + "\n# reviewed\n"}
    r = first.post("/api/rules/publish", json={"files": changed, "reason": "comment"})
    assert r.status_code == 200 and r.json()["status"] == "pending", r.text
    with read_session() as s:
        assert rules_store.active_version(s) is None
    rid = r.json()["request"]["id"]
    assert first.post(f"/api/changes/{rid}/approve", json={}).status_code == 403
    assert second.post(f"/api/changes/{rid}/approve", json={}).status_code == 200
    with read_session() as s:
        assert rules_store.active_version(s) == r.json()["version"]
    assert "rules.change_approved" in _actions()


def test_cli_publish_requests_approve(tmp_path, make_user) -> None:  # type: ignore[no-untyped-def]
    runner = CliRunner()
    lead1, _ = make_user("governance")
    lead2, _ = make_user("governance")
    path = tmp_path / "strict.yaml"
    path.write_text(STRICT)
    r = runner.invoke(cli, ["policy", "publish", str(path), "--reason", "stricter", "--author", lead1])
    assert r.exit_code == 0 and "waiting for a second governance lead" in r.output, r.output
    rid = int(re.search(r"change request (\d+)", r.output).group(1))  # type: ignore[union-attr]
    r = runner.invoke(cli, ["policy", "requests"])
    assert r.exit_code == 0 and f"{rid:>4} pending" in r.output and "stricter" in r.output
    r = runner.invoke(cli, ["policy", "approve", str(rid), "--author", lead1])
    assert r.exit_code == 1 and "different governance lead" in r.output
    r = runner.invoke(cli, ["policy", "approve", str(rid), "--author", lead2, "--comment", "ok"])
    assert r.exit_code == 0 and "is now active" in r.output, r.output
    r = runner.invoke(cli, ["policy", "requests", "--status", "all", "--json"])
    assert r.exit_code == 0 and '"status": "published"' in r.output
    with read_session() as s:
        assert store.active_version(s) == changes.get(s, rid).version


def test_pages_offer_approve_only_to_another_lead(app, make_user) -> None:  # type: ignore[no-untyped-def]
    (n1, p1), (n2, p2) = make_user("governance"), make_user("governance")
    c1, c2 = TestClient(app), TestClient(app)
    t1, t2 = login(c1, n1, p1), login(c2, n2, p2)
    r = c1.post("/governance/policy", data={"text": STRICT, "action": "publish", "reason": "lead review",
                                            "csrf_token": t1}, headers=HTML, follow_redirects=True)
    assert r.status_code == 200 and "Submitted for approval" in r.text
    with read_session() as s:
        rid = changes.listing(s, status="pending")[0].id
    assert f'id="approve-{rid}"' not in r.text and "different governance lead" in r.text
    assert "Four eyes" in r.text
    page = c2.get("/governance/policy", headers=HTML).text
    assert f'id="approve-{rid}"' in page
    r = c2.post(f"/governance/changes/{rid}/approve", data={"comment": "ok", "csrf_token": t2}, headers=HTML,
                follow_redirects=True)
    assert r.status_code == 200 and "Approved and published" in r.text
    r = c1.post(f"/governance/changes/{rid}/approve", data={"csrf_token": t1}, headers=HTML)
    assert r.status_code == 409 and "already published" in r.text
    assert c1.get("/governance/changes", headers=HTML).status_code == 200
