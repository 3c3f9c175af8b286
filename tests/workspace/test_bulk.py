"""POST /api/cases/bulk: per-case optimistic locking, one result per case, nothing overwritten silently."""

from __future__ import annotations

from sqlalchemy import select

from casemgr.audit.models import AuditEvent
from casemgr.cases.models import Case
from casemgr.db import read_session

from .conftest import make_cases, versions


def _audit(case_id: int) -> list[str]:
    with read_session() as s:
        return list(s.execute(select(AuditEvent.action).where(AuditEvent.case_id == case_id)
                              .order_by(AuditEvent.seq)).scalars())


def test_bulk_assign_with_two_cases_changed_meanwhile(person) -> None:  # type: ignore[no-untyped-def]
    lead = person("lena", "lead")
    other = person("omar", "agent")
    person("ann", "agent")
    ids = make_cases(20)
    refs = versions(ids)
    # Two cases change after the lead read them.
    for cid in ids[3:5]:
        r = other.client.post(f"/api/cases/{cid}/notes", json={"body": "checked", "version": versions([cid])[0]["version"]})
        assert r.status_code == 201, r.text
    r = lead.client.post("/api/cases/bulk", json={"action": "assign", "params": {"assignee": "ann"}, "cases": refs})
    assert r.status_code == 200, r.text
    body = r.json()
    results = {x["id"]: x for x in body["results"]}
    assert [x["id"] for x in body["results"]] == ids
    assert {results[i]["result"] for i in ids[3:5]} == {"conflict"}
    assert all(results[i]["result"] == "ok" for i in ids if i not in ids[3:5])
    assert "omar" in results[ids[3]]["message"]
    assert body["summary"] == "18 changed, 2 skipped: changed by someone else"
    with read_session() as s:
        cases = {c.id: c for c in s.execute(select(Case).where(Case.id.in_(ids))).scalars()}
    assert all(cases[i].assignee_id is None for i in ids[3:5])  # nothing overwritten
    assert all(cases[i].assignee_id == person_id(s, "ann") for i in ids if i not in ids[3:5])
    assert results[ids[0]]["version"] == cases[ids[0]].version
    assert _audit(ids[0]).count("case.assigned") == 1 and "case.assigned" not in _audit(ids[3])


def person_id(_s, name: str) -> int:  # type: ignore[no-untyped-def]
    from casemgr.users.models import User

    with read_session() as s:
        return int(s.execute(select(User.id).where(User.username == name)).scalar_one())


def test_priority_queue_transition_close_and_invalid(person) -> None:  # type: ignore[no-untyped-def]
    agent = person("ada", "agent")
    ids = make_cases(3)
    r = agent.client.post("/api/cases/bulk", json={"action": "set_priority", "params": {"priority": "urgent"},
                                                   "cases": versions(ids)})
    assert [x["result"] for x in r.json()["results"]] == ["ok"] * 3
    from casemgr.casetypes.registry import get_registry

    queue = sorted(get_registry().org.queue_names)[-1]
    r = agent.client.post("/api/cases/bulk", json={"action": "move_queue", "params": {"queue": queue},
                                                   "cases": versions(ids[:1])})
    assert r.json()["results"][0]["result"] == "ok"
    with read_session() as s:
        assert s.get(Case, ids[0]).queue == queue and s.get(Case, ids[1]).priority == "urgent"  # type: ignore[union-attr]
    # A stage the case cannot reach is `invalid`, per case; a missing reason refuses the whole call (422).
    r = agent.client.post("/api/cases/bulk", json={"action": "transition",
                                                   "params": {"to_stage": "feedback", "reason": "done"},
                                                   "cases": versions(ids[1:2])})
    assert r.status_code == 200 and r.json()["results"][0]["result"] == "invalid"
    assert "cannot move" in r.json()["results"][0]["message"]
    r = agent.client.post("/api/cases/bulk", json={"action": "close", "params": {}, "cases": versions(ids[1:2])})
    assert r.status_code == 422 and "reason" in r.json()["detail"]
    r = agent.client.post("/api/cases/bulk", json={"action": "close", "params": {"reason": "duplicate of a call"},
                                                   "cases": versions(ids[1:3])})
    assert [x["result"] for x in r.json()["results"]] == ["invalid", "invalid"]  # complaints need a resolution code
    assert "needs a resolution code" in r.json()["results"][0]["message"]
    r = agent.client.post("/api/cases/bulk", json={"action": "close", "params": {"reason": "duplicate of a call",
                                                                                 "resolution_code": "withdrawn"},
                                                   "cases": versions(ids[1:3])})
    assert [x["result"] for x in r.json()["results"]] == ["ok", "ok"]
    with read_session() as s:
        assert s.get(Case, ids[1]).status == "closed"  # type: ignore[union-attr]
        ev = s.execute(select(AuditEvent).where(AuditEvent.case_id == ids[1], AuditEvent.action == "case.transitioned")
                       ).scalars().one()
        assert ev.after["reason"] == "duplicate of a call"
    r = agent.client.post("/api/cases/bulk", json={"action": "explode", "params": {}, "cases": versions(ids[:1])})
    assert r.status_code == 422
    r = agent.client.post("/api/cases/bulk", json={"action": "assign", "params": {}, "cases": []})
    assert r.status_code == 422


def test_forbidden_per_role(person) -> None:  # type: ignore[no-untyped-def]
    legal = person("lou", "legal")  # may write cases, may not assign them
    reviewer = person("rae", "reviewer")
    ids = make_cases(2)
    r = legal.client.post("/api/cases/bulk", json={"action": "assign", "params": {"assignee": "lou"},
                                                   "cases": versions(ids)})
    assert r.status_code == 200
    assert [x["result"] for x in r.json()["results"]] == ["forbidden", "forbidden"]
    assert r.json()["summary"] == "0 changed, 2 skipped: not allowed"
    assert reviewer.client.post("/api/cases/bulk", json={"action": "claim", "cases": versions(ids)}).status_code == 403


def test_claim_only_takes_unassigned_cases(person) -> None:  # type: ignore[no-untyped-def]
    ann = person("ann", "agent")
    bob = person("bob", "agent")
    lead = person("lena", "lead")
    cid = make_cases(1)[0]
    r = ann.client.post("/api/cases/bulk", json={"action": "claim", "cases": versions([cid])})
    assert r.json()["results"][0]["result"] == "ok"
    # Bob's claim does not silently take Ann's case.
    r = bob.client.post("/api/cases/bulk", json={"action": "claim", "cases": versions([cid])})
    res = r.json()["results"][0]
    assert res["result"] == "conflict" and "assigned to ann" in res["message"]
    # Bob cannot reassign it either; only a lead may.
    r = bob.client.post("/api/cases/bulk", json={"action": "assign", "params": {"assignee": "bob"},
                                                 "cases": versions([cid])})
    assert r.json()["results"][0]["result"] == "forbidden"
    assert ann.client.get("/api/notifications").json()["unread"] == 0
    # An explicit take-over works and tells Ann.
    r = bob.client.post("/api/cases/bulk", json={"action": "claim", "params": {"take_over": True},
                                                 "cases": versions([cid])})
    assert r.json()["results"][0]["result"] == "ok"
    notes = ann.client.get("/api/notifications").json()
    assert notes["unread"] == 1 and notes["items"][0]["kind"] == "taken_over" and "bob" in notes["items"][0]["text"]
    # A lead reassigns directly; Bob hears about it.
    r = lead.client.post("/api/cases/bulk", json={"action": "assign", "params": {"assignee": "ann"},
                                                  "cases": versions([cid])})
    assert r.json()["results"][0]["result"] == "ok"
    assert bob.client.get("/api/notifications?unread=true").json()["items"][0]["kind"] == "taken_over"
