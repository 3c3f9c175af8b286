"""The AI draft reply on the case page and the API (issue 20): the draft sits in the reply box marked as an AI
draft with confidence and evidence; the agent edits and sends it; sending records the outcome with the edit
distance, audited, and reviewers see it. AI never sends a reply itself."""

from __future__ import annotations

import html
import re
from typing import Any

from sqlalchemy import select

from casemgr.ai.drafting.distance import edit_distance
from casemgr.audit.models import AuditEvent
from casemgr.db import read_session
from casemgr.governance.enums import ReviewStatus
from casemgr.governance.models import AIDecision
from casemgr.intake.models import Message
from tests.web._helpers import HTML, add_suggestion

from .conftest import make_cases

DRAFT = ("Dear Pat Doe,\n\nThank you for contacting us. Your complaint is registered under reference CMP-1.\n\n"
         "I understand that you are disputing a charge on your account. We will request the transaction records "
         "for this charge and review them in detail.\n\nKind regards,\nCustomer care\n")
EVIDENCE = ["intent dispute_charge (0.81)", "macro complaint-acknowledge"]


def _draft(case_id: int, text: str = DRAFT) -> int:
    return add_suggestion(case_id, "draft_reply", {"text": text, "evidence": EVIDENCE, "sources": ["x"]})


def _version(c: Any, cid: int) -> int:
    page = c.get(f"/cases/{cid}", headers=HTML).text
    m = re.search(r'id="reply-form".*?name="version" value="(\d+)"', page, re.S)
    assert m
    return int(m.group(1))


def _row(decision_id: int) -> AIDecision:
    with read_session() as s:
        row = s.get(AIDecision, decision_id)
        assert row is not None
        return row


def _outbound(cid: int) -> list[Message]:
    with read_session() as s:
        return list(s.execute(select(Message).where(Message.case_id == cid, Message.direction == "outbound")
                              ).scalars())


def test_the_draft_waits_in_the_reply_box_with_confidence_and_evidence(web_client) -> None:  # type: ignore[no-untyped-def]
    [cid] = make_cases(1)
    did = _draft(cid)
    c, _ = web_client("agent")
    page = c.get(f"/cases/{cid}", headers=HTML).text
    box = re.search(r'<textarea id="reply-body"[^>]*>(.*?)</textarea>', page, re.S)
    assert box and html.unescape(box.group(1)) == DRAFT
    assert '<span class="tag ai" id="ai-draft-mark" >AI draft' in page  # shown, not hidden
    assert f'name="ai_decision" value="{did}"' in page
    info = re.search(r'id="ai-draft-info">(.*?)</p>', page, re.S)
    assert info and "confidence 81%" in info.group(1) and "intent dispute_charge (0.81)" in info.group(1)
    # The suggestion list points to the reply box, where the draft is used.
    assert 'It is <a href="#reply-body">in the reply box</a>' in page
    assert f'action="/cases/{cid}/ai/{did}/reject"' in page
    # A reviewer cannot send replies: no reply box, no draft in it.
    r, _ = web_client("reviewer")
    assert 'id="reply-body"' not in r.get(f"/cases/{cid}", headers=HTML).text


def test_sending_the_edited_draft_records_the_edit_distance_audited(web_client) -> None:  # type: ignore[no-untyped-def]
    [cid] = make_cases(1)
    did = _draft(cid)
    c, csrf = web_client("agent")
    sent = DRAFT.replace("review them in detail", "call you tomorrow with what we find")
    r = c.post(f"/cases/{cid}/reply", data={"body": sent, "version": _version(c, cid), "ai_decision": did,
                                            "csrf_token": csrf}, headers=HTML, follow_redirects=False)
    assert r.status_code == 303, r.text
    row = _row(did)
    assert row.review_status == ReviewStatus.ACCEPTED and row.reviewed_by and row.reviewed_by.startswith("user:")
    assert row.edit_distance == edit_distance(DRAFT, sent) and 0 < row.edit_distance < 0.3
    [msg] = _outbound(cid)
    assert msg.body_text and "call you tomorrow" in msg.body_text
    with read_session() as s:
        ev = s.execute(select(AuditEvent).where(AuditEvent.case_id == cid, AuditEvent.action == "ai.draft_sent")
                       ).scalar_one()
        assert ev.entity == f"ai_decision:{did}" and ev.after["edit_distance"] == row.edit_distance
        assert ev.after["message_id"] == msg.id and ev.actor == row.reviewed_by
    page = c.get(f"/cases/{cid}", headers=HTML).text
    assert f'name="ai_decision" value="{did}"' not in page and 'id="ai-draft-mark" hidden' in page  # used up
    pct = f"{row.edit_distance * 100:.0f}%"
    assert f"sent with {pct} changed (edit distance {row.edit_distance:.2f})" in page
    timeline = c.get(f"/cases/{cid}?tab=audit", headers=HTML).text
    assert f"AI draft reply edited and sent by {row.reviewed_by.split(':', 1)[1]}, {pct} changed" in timeline


def test_a_draft_sent_as_is_has_distance_zero_and_reviewers_see_the_figures(web_client) -> None:  # type: ignore[no-untyped-def]
    [a, b] = make_cases(2)
    da, db = _draft(a), _draft(b)
    c, csrf = web_client("agent")
    for cid, did, body in ((a, da, DRAFT), (b, db, "Dear Pat, we are on it.\n")):
        r = c.post(f"/cases/{cid}/reply", data={"body": body, "version": _version(c, cid), "ai_decision": did,
                                                "csrf_token": csrf}, headers=HTML, follow_redirects=False)
        assert r.status_code == 303
    assert _row(da).edit_distance == 0.0
    far = _row(db).edit_distance
    assert far is not None and far > 0.8
    rev, _ = web_client("reviewer")
    page = rev.get("/review", headers=HTML).text
    assert 'id="drafts-sent">2</strong>' in page
    assert f'id="drafts-mean-distance">{(0.0 + far) / 2:.2f}</strong>' in page
    assert "1 sent unchanged" in page and page.count('class="edit-distance"') == 2


def test_a_wrong_or_used_draft_id_is_refused_and_nothing_is_sent(web_client) -> None:  # type: ignore[no-untyped-def]
    [cid, other] = make_cases(2)
    did = _draft(cid)
    foreign = _draft(other)
    c, csrf = web_client("agent")
    r = c.post(f"/cases/{cid}/reply", data={"body": "Hello", "version": _version(c, cid), "ai_decision": foreign,
                                            "csrf_token": csrf}, headers=HTML)
    assert r.status_code == 422 and "not a reply draft on this case" in r.text
    assert _outbound(cid) == [] and _row(did).review_status == ReviewStatus.PENDING
    # Rejected meanwhile (by the agent in another tab): the reply is refused with 409, the typed text kept.
    r = c.post(f"/cases/{cid}/ai/{did}/reject", data={"reason": "wrong tone", "csrf_token": csrf}, headers=HTML,
               follow_redirects=False)
    assert r.status_code == 303
    r = c.post(f"/cases/{cid}/reply", data={"body": "My own words", "version": _version(c, cid), "ai_decision": did,
                                            "csrf_token": csrf}, headers=HTML)
    assert r.status_code == 409 and "the AI draft was rejected" in r.text and "My own words" in r.text
    assert f'name="ai_decision" value="{did}"' not in r.text and _outbound(cid) == []
    # A stale case version: 409 as for any reply, and the draft stays as it was.
    did2 = _draft(other)
    seen = _version(c, other)
    r = c.post(f"/cases/{other}/notes", data={"body": "Checked the statement.", "version": seen, "csrf_token": csrf},
               headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    r = c.post(f"/cases/{other}/reply", data={"body": DRAFT, "version": seen, "ai_decision": did2,
                                              "csrf_token": csrf}, headers=HTML, follow_redirects=False)
    assert r.status_code == 409 and _row(did2).review_status == ReviewStatus.PENDING and _outbound(other) == []


def test_the_api_reads_the_draft_and_sends_a_reply_with_it(person) -> None:  # type: ignore[no-untyped-def]
    [cid] = make_cases(1)
    agent = person("ann", "agent").client
    assert agent.get(f"/api/cases/{cid}/draft-reply").status_code == 404
    did = _draft(cid)
    d = agent.get(f"/api/cases/{cid}/draft-reply").json()
    assert d["decision_id"] == did and d["text"] == DRAFT and d["confidence"] == 0.81 and d["evidence"] == EVIDENCE
    assert d["owner_role"] == "agent"
    version = agent.get(f"/api/cases/{cid}").json()["version"]
    sent = DRAFT + "P.S. Your statement arrived.\n"
    r = agent.post(f"/api/cases/{cid}/reply", json={"body": sent, "version": version, "ai_decision": did})
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["draft"] == {"decision_id": did, "edit_distance": edit_distance(DRAFT, sent)}
    assert out["version"] == version + 1 and out["message_id"] == _outbound(cid)[0].id
    assert agent.get(f"/api/cases/{cid}/draft-reply").status_code == 404  # used
    items = agent.get(f"/api/cases/{cid}/ai/decisions").json()
    assert next(x for x in items if x["id"] == did)["edit_distance"] == out["draft"]["edit_distance"]
    # Bad input: 422 with a message, stale version 409, unknown case 404; never a 500.
    assert agent.post(f"/api/cases/{cid}/reply", json={"body": "", "version": 1}).status_code == 422
    assert agent.post(f"/api/cases/{cid}/reply", json={"body": "x", "version": version}).status_code == 409
    assert agent.post(f"/api/cases/{cid}/reply", json={"body": "x", "version": version + 1,
                                                       "ai_decision": 999999}).status_code == 422
    assert agent.get("/api/cases/999999/draft-reply").status_code == 404
    reviewer = person("rita", "reviewer").client
    assert reviewer.post(f"/api/cases/{cid}/reply", json={"body": "x", "version": version + 1}).status_code == 403
