"""JSON API: permissions per role, suggestions, reviewer audit, policy lifecycle."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from casemgr.db import write_session
from casemgr.governance import service
from casemgr.governance.decide import AIOutput

from .util import POLICY_FILE, new_case, policy, policy_text


def _client(app, api_key, *roles: str) -> TestClient:  # type: ignore[no-untyped-def]
    return TestClient(app, headers={"X-API-Key": api_key(*roles)})


def _seed() -> tuple[int, dict[str, int]]:
    sampled = policy(lambda d: d["review"].update(sample_rate=1.0))
    with write_session() as s:
        case = new_case(s)
        ids = {}
        for name, out in {
            "cat": AIOutput(kind="classify", field="category", value={"category": "credit_card"}, confidence=0.9,
                            model_version="m-1"),
            "refund": AIOutput(kind="approve_refund", value={"amount": 900}, confidence=0.9),
            "reply": AIOutput(kind="draft_reply", value={"text": "Hello"}, confidence=0.9),
            "close": AIOutput(kind="close_case", value={"to_stage": "closed"}, confidence=1.0),
        }.items():
            ids[name] = service.record_decision(s, case, out, policy=sampled).id
        return case.id, ids


def test_decisions_and_suggestions_by_role(app, api_key) -> None:  # type: ignore[no-untyped-def]
    case_id, ids = _seed()
    agent, finance = _client(app, api_key, "agent"), _client(app, api_key, "finance")
    reviewer = _client(app, api_key, "reviewer")
    visible = agent.get(f"/api/cases/{case_id}/ai/decisions", params={"include_rejected": True}).json()
    assert {d["kind"] for d in visible} == {"classify", "approve_refund", "draft_reply"}  # never is not offered
    audit = reviewer.get(f"/api/cases/{case_id}/ai/decisions", params={"include_rejected": True}).json()
    assert "close_case" in {d["kind"] for d in audit}
    mine = agent.get("/api/ai/suggestions").json()
    assert [d["kind"] for d in mine] == ["draft_reply"]
    assert agent.post(f"/api/ai/decisions/{ids['refund']}/accept", json={}).status_code == 403
    assert finance.post(f"/api/ai/decisions/{ids['refund']}/reject", json={"reason": ""}).status_code == 422
    r = finance.post(f"/api/ai/decisions/{ids['refund']}/accept", json={"comment": "ok"})
    assert r.status_code == 200 and r.json()["review_status"] == "accepted"
    assert finance.post(f"/api/ai/decisions/{ids['refund']}/accept", json={}).status_code == 409
    r = agent.post(f"/api/ai/decisions/{ids['reply']}/reject", json={"reason": "tone"})
    assert r.status_code == 200 and r.json()["review_status"] == "rejected"
    assert agent.post(f"/api/ai/decisions/{ids['close']}/accept", json={}).status_code == 409


def test_reviewer_queue_override_metrics_and_export(app, api_key) -> None:  # type: ignore[no-untyped-def]
    case_id, ids = _seed()
    reviewer, agent = _client(app, api_key, "reviewer"), _client(app, api_key, "agent")
    assert agent.get("/api/review/queue").status_code == 403
    queue = reviewer.get("/api/review/queue").json()
    # Reviewers audit applied (sampled) decisions; suggestions belong to their owner roles (issue 21).
    assert {d["id"] for d in queue} == {ids["cat"]} and queue[0]["can_verdict"] is True
    both = _client(app, api_key, "reviewer", "finance").get("/api/review/queue").json()
    assert {d["id"] for d in both} == {ids["cat"], ids["refund"]}
    r = reviewer.post(f"/api/review/decisions/{ids['reply']}", json={"verdict": "override", "reason_code": "other"})
    assert r.status_code == 403 and "belongs to the agent role" in r.json()["detail"]
    r = reviewer.post(f"/api/review/decisions/{ids['reply']}/comment", json={"comment": "tone is off"})
    assert r.status_code == 200 and r.json()["review_status"] == "pending"
    assert reviewer.post(f"/api/review/decisions/{ids['reply']}/comment", json={"comment": ""}).status_code == 422
    assert reviewer.get("/api/review/queue", params={"after_id": ids["cat"]}).json() == []  # keyset paging
    assert reviewer.get("/api/review/queue", params={"min_confidence": 0.95}).json() == []
    assert len(reviewer.get("/api/review/queue", params={"model_version": "m-1"}).json()) == 1
    url = f"/api/review/decisions/{ids['cat']}"
    assert reviewer.post(url, json={}).status_code == 422  # no verdict pre-selected
    assert reviewer.post(url, json={"verdict": "override"}).status_code == 422  # reason code needed
    r = reviewer.post(url, json={"verdict": "override", "reason_code": "wrong_category",
                                 "value": {"category": "retail_banking"}})
    assert r.status_code == 200, r.text
    case = agent.get(f"/api/cases/{case_id}").json()
    assert case["category"] == "retail_banking"
    m = reviewer.get("/api/review/metrics", params={"by": "kind"}).json()
    assert {g["group"]: g["override_rate"] for g in m}["classify"] == 1.0
    assert agent.get("/api/review/metrics").status_code == 403
    csv = reviewer.get("/api/review/overrides.csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.text.splitlines()[0] == "text,label" and csv.text.strip().endswith("retail_banking")


@pytest.mark.usefixtures("single_person_publish")  # publish mechanics; four eyes: test_four_eyes.py
def test_policy_lifecycle_api(app, api_key) -> None:  # type: ignore[no-untyped-def]
    gov, reviewer, agent = (_client(app, api_key, r) for r in ("governance", "reviewer", "agent"))
    base = POLICY_FILE.read_text(encoding="utf-8")
    assert agent.get("/api/policy/ai").status_code == 403
    active = reviewer.get("/api/policy/ai").json()
    assert active["policy"]["decisions"]["close_case"]["mode"] == "never"
    bad = base.replace("owner: finance", "owner: accounts", 1)
    v = reviewer.post("/api/policy/ai/validate", json={"text": bad}).json()
    assert not v["ok"] and "unknown role 'accounts'" in v["problems"][0]["message"] and v["problems"][0]["line"] > 1
    strict = policy_text(lambda d: d["decisions"].update(set_priority={"mode": "suggest", "owner": "lead"}))
    d = reviewer.post("/api/policy/ai/diff", json={"text": strict}).json()
    assert any(c["path"] == "decisions.set_priority.mode" for c in d["changes"])
    sim = reviewer.post("/api/policy/ai/simulate", json={"text": strict, "last_n": 10}).json()
    assert sim["decisions"] == 0 and sim["candidate_version"] == d["candidate_version"]
    assert reviewer.post("/api/policy/ai/publish", json={"text": strict, "reason": "x"}).status_code == 403
    assert gov.post("/api/policy/ai/publish", json={"text": strict, "reason": ""}).status_code == 422
    r = gov.post("/api/policy/ai/publish", json={"text": bad, "reason": "try"})
    assert r.status_code == 422 and r.json()["problems"][0]["message"].startswith("decisions.approve_refund.owner")
    assert gov.post("/api/policy/ai/publish", json={"text": base, "reason": "baseline"}).status_code == 200
    r = gov.post("/api/policy/ai/publish", json={"text": strict, "reason": "stricter"})
    assert r.status_code == 200 and r.json()["changed"]
    assert reviewer.get("/api/policy/ai").json()["version"] == d["candidate_version"]
    r = gov.post("/api/policy/ai/rollback", json={"reason": "undo"})
    assert r.status_code == 200
    versions = reviewer.get("/api/policy/ai/versions").json()
    assert [x["reason"] for x in versions] == ["undo", "stricter", "baseline"]
    assert versions[0]["author"].startswith("apikey:")
