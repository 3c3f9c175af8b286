"""Merging duplicates: messages (with attachments) and notes move, the duplicate points at the survivor,
both are audited; a duplicate changed meanwhile is skipped, never half-merged."""

from __future__ import annotations

from sqlalchemy import select

from casemgr.audit.models import AuditEvent
from casemgr.cases.models import Case, Note
from casemgr.db import read_session
from casemgr.intake.models import Attachment, Message
from tests.web._helpers import add_inbound_message

from .conftest import make_cases, versions


def test_merge_moves_messages_notes_and_attachments(person) -> None:  # type: ignore[no-untyped-def]
    agent = person("ada", "agent")
    survivor, dup1, dup2, stale = make_cases(4)
    add_inbound_message(dup1, "First mail about the double charge", attachment_name="statement.html")
    add_inbound_message(dup2, "Second mail, still charged twice")
    for cid in (dup1, dup2):
        r = agent.client.post(f"/api/cases/{cid}/notes", json={"body": f"note on {cid}",
                                                              "version": versions([cid])[0]["version"]})
        assert r.status_code == 201
    refs = versions([survivor, dup1, dup2, stale])
    r = agent.client.post(f"/api/cases/{stale}/notes", json={"body": "changed meanwhile", "version": refs[3]["version"]})
    assert r.status_code == 201  # `stale` changed after `refs` was read
    r = agent.client.post("/api/cases/bulk", json={"action": "merge", "params": {"survivor": survivor}, "cases": refs})
    assert r.status_code == 200, r.text
    res = {x["id"]: x for x in r.json()["results"]}
    assert res[dup1]["result"] == res[dup2]["result"] == "ok" and res[survivor]["result"] == "ok"
    assert res[stale]["result"] == "conflict"
    assert r.json()["summary"] == "3 changed, 1 skipped: changed by someone else"
    with read_session() as s:
        msgs = s.execute(select(Message).where(Message.case_id == survivor)).scalars().all()
        assert len(msgs) == 2
        att = s.execute(select(Attachment)).scalars().one()
        assert att.message_id in {m.id for m in msgs}
        notes = s.execute(select(Note.body).where(Note.case_id == survivor)).scalars().all()
        assert sorted(notes) == sorted([f"note on {dup1}", f"note on {dup2}"])
        for cid in (dup1, dup2):
            c = s.get(Case, cid)
            assert c.merged_into_id == survivor and c.status == "closed"  # type: ignore[union-attr]
        assert s.get(Case, stale).merged_into_id is None  # type: ignore[union-attr]
        ev = s.execute(select(AuditEvent).where(AuditEvent.case_id == survivor, AuditEvent.action == "case.merged")
                       ).scalars().one()
        assert ev.after["moved"] == {"messages": 2, "notes": 2} and len(ev.after["merged"]) == 2
        into = s.execute(select(AuditEvent).where(AuditEvent.case_id == dup1, AuditEvent.action == "case.merged_into")
                         ).scalars().one()
        assert into.after["merged_into_id"] == survivor
    # The case page of the duplicate says where it went.
    page = agent.client.get(f"/cases/{dup1}", headers={"Accept": "text/html"})
    assert page.status_code in (200, 303)


def test_merge_refuses_a_changed_survivor_and_mixed_types(person) -> None:  # type: ignore[no-untyped-def]
    agent = person("ada", "agent")
    a, b = make_cases(2)
    contract = make_cases(1, case_type="contract")[0]
    refs = versions([a, b])
    refs[0]["version"] += 5
    r = agent.client.post("/api/cases/bulk", json={"action": "merge", "params": {"survivor": a}, "cases": refs})
    assert [x["result"] for x in r.json()["results"]] == ["conflict", "conflict"]
    with read_session() as s:
        assert s.get(Case, b).merged_into_id is None  # type: ignore[union-attr]
    r = agent.client.post("/api/cases/bulk", json={"action": "merge", "params": {"survivor": a},
                                                   "cases": versions([a, contract])})
    res = {x["id"]: x for x in r.json()["results"]}
    assert res[contract]["result"] == "invalid" and res[a]["result"] == "invalid"
    r = agent.client.post("/api/cases/bulk", json={"action": "merge", "params": {"survivor": 999999},
                                                   "cases": versions([a, b])})
    assert r.status_code == 422
