"""The case page: one conversation in time order, the audit timeline in words, claim / take over, mentions."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from tests.web._helpers import HTML, add_inbound_message, add_suggestion

from .conftest import make_cases, versions


def _me(c) -> str:  # type: ignore[no-untyped-def]
    return re.search(r'<span class="who">(\S+)', c.get("/queue", headers=HTML).text).group(1)  # type: ignore[union-attr]


def test_conversation_interleaves_mail_notes_and_ai_in_time_order(web_client, time_machine) -> None:  # type: ignore[no-untyped-def]
    t0 = datetime(2026, 4, 1, 9, 0, tzinfo=UTC)
    time_machine.move_to(t0, tick=False)
    cid = make_cases(1)[0]
    c, csrf = web_client("agent")
    time_machine.move_to(t0 + timedelta(minutes=5), tick=False)
    add_inbound_message(cid, "Any news on my refund?")
    time_machine.move_to(t0 + timedelta(minutes=10), tick=False)
    r = c.post(f"/cases/{cid}/notes", data={"body": "Called the bank", "version": versions([cid])[0]["version"],
                                            "csrf_token": csrf}, headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    time_machine.move_to(t0 + timedelta(minutes=15), tick=False)
    add_suggestion(cid, value={"text": "Your refund was sent today."})
    time_machine.move_to(t0 + timedelta(minutes=20), tick=False)
    r = c.post(f"/cases/{cid}/reply", data={"body": "Refund is on its way.", "version": versions([cid])[0]["version"],
                                            "csrf_token": csrf}, headers=HTML, follow_redirects=True)
    assert r.status_code == 200
    thread = r.text.split('id="thread"')[1].split("</ol>")[0]
    kinds = re.findall(r'data-kind="(\w+)"', thread)
    assert kinds == ["request", "inbound", "note", "ai", "outbound"]
    assert "Use this draft" in thread and 'class="delivery' in thread
    # The audit timeline is a separate tab, in words.
    assert 'id="timeline" class="tab-panel" role="tabpanel" hidden' in r.text
    audit = c.get(f"/cases/{cid}?tab=audit", headers=HTML).text
    assert 'id="conversation-panel" class="tab-panel" role="tabpanel" aria-labelledby="tab-conversation" hidden' in audit
    assert "case opened by test" in audit and "internal note by" in audit and "reply to the customer by" in audit


def test_ai_change_reads_in_words() -> None:
    from casemgr.web.case_story import describe

    class D:
        kind, confidence, policy_version = "set_priority", 0.913, "abc123"

    text = describe("ai.applied", "ai:local-model", {"priority": "normal"}, {"priority": "urgent", "version": 4,
                                                                            "kind": "set_priority"},
                    "ai_decision:7", {7: D()}, {"abc123": "v3"}, {})  # type: ignore[dict-item]
    assert text == "priority normal → urgent by AI, policy v3, confidence 0.91"
    assert describe("case.assigned", "user:ann", {"assignee_id": None}, {"assignee_id": 3, "assignee": "bob"},
                    "case", {}, {}, {}) == "assigned to bob by ann"


def test_claim_and_take_over_from_the_case_page(web_client) -> None:  # type: ignore[no-untyped-def]
    cid = make_cases(1)[0]
    ann, ann_csrf = web_client("agent")
    bob, bob_csrf = web_client("agent")
    r = ann.post(f"/cases/{cid}/claim", data={"version": versions([cid])[0]["version"], "csrf_token": ann_csrf},
                 headers=HTML, follow_redirects=True)
    assert "The case is yours." in r.text and f'id="case-owner">{_me(ann)}' in r.text
    # Bob's claim is refused and offers the explicit take-over.
    r = bob.post(f"/cases/{cid}/claim", data={"version": versions([cid])[0]["version"], "csrf_token": bob_csrf},
                 headers=HTML)
    assert r.status_code == 409 and f"assigned to {_me(ann)}" in r.text and 'id="take-over-form"' in r.text
    r = bob.post(f"/cases/{cid}/claim", data={"version": versions([cid])[0]["version"], "csrf_token": bob_csrf,
                                              "take_over": "yes"}, headers=HTML, follow_redirects=True)
    assert f'id="case-owner">{_me(bob)}' in r.text
    bell = ann.get("/notifications/bell", headers=HTML).text
    assert '<span class="count" id="bell-count">1</span>' in bell
    page = ann.get("/notifications", headers=HTML).text
    assert f"{_me(bob)} took" in page and 'data-kind="taken_over"' in page


def test_mention_notifies_a_colleague(web_client, person) -> None:  # type: ignore[no-untyped-def]
    cid = make_cases(1)[0]
    colleague = person("carla", "agent")
    c, csrf = web_client("agent")
    r = c.post(f"/cases/{cid}/notes", data={"body": "@carla can you check the refund? cc @nobody-here",
                                            "version": versions([cid])[0]["version"], "csrf_token": csrf},
               headers=HTML, follow_redirects=True)
    assert '<span class="mention">@carla</span>' in r.text
    got = colleague.client.get("/api/notifications").json()
    assert got["unread"] == 1 and got["items"][0]["kind"] == "mention" and got["items"][0]["case_id"] == cid
    assert "can you check the refund" in got["items"][0]["text"]
    r = colleague.client.post("/api/notifications/read", json={"ids": [got["items"][0]["id"]]})
    assert r.json() == {"marked": 1, "unread": 0}
    # A mention through the API notifies too; the author is never notified of their own mention.
    r = colleague.client.post(f"/api/cases/{cid}/notes", json={"body": "done, @carla", "version": versions([cid])[0]["version"]})
    assert r.status_code == 201 and colleague.client.get("/api/notifications").json()["unread"] == 0


def test_customer_panel_lists_other_cases(web_client) -> None:  # type: ignore[no-untyped-def]
    ids = make_cases(3, email="zoe@example.com", subject="Zoe case")
    c, _ = web_client("agent")
    page = c.get(f"/cases/{ids[0]}", headers=HTML).text
    panel = page.split('id="customer"')[1].split("</section>")[0]
    assert "zoe@example.com" in panel and "Zoe case 1" in panel and "Zoe case 2" in panel and "Zoe case 0" not in panel


def test_the_timeline_reads_events_without_orm_objects(app) -> None:  # type: ignore[no-untyped-def]
    """Every case page reads its audit trail: as plain records (issue 23), in chain order, all columns."""
    from casemgr.audit import service as audit
    from casemgr.audit.models import AuditEvent
    from casemgr.cases import service as cases
    from casemgr.db import read_session, write_session

    cid = make_cases(1)[0]
    with write_session() as s:
        c = cases.get_case(s, cid)
        cases.add_note(s, cid, "first look", "user:test", c.version)
    with read_session() as s:
        events = audit.events_for_case(s, cid)
        assert [e.action for e in events][:1] == ["case.created"] and len(events) >= 2
        assert [e.seq for e in events] == sorted(e.seq for e in events)
        assert events[0].after["case_type"] == "complaint" and events[0].hash
        assert not any(isinstance(o, AuditEvent) for o in s.identity_map.values())
