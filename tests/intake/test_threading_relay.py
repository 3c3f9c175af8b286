"""Threading by reference and the public form as a relay (issue 18).

A subject reference ("[CMP-1]") can be typed by anyone: strangers must not add to closed cases, the public form
must not confirm that a reference exists, agents must see when a message is not from the case's customer, and
the form's acknowledgement must not mail anyone's text to any address again and again.
"""

from __future__ import annotations

import email
import email.policy
import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from casemgr.audit.models import AuditEvent
from casemgr.cases.models import Case
from casemgr.db import read_session, write_session
from casemgr.intake import service
from casemgr.intake.models import Message
from casemgr.security.models import SecurityEvent

HTML = {"Accept": "text/html"}


def _customer_case() -> service.IntakeResult:
    raw = (b"From: Bo <bo@example.org>\nTo: support@example.com\nSubject: Billing problem\n"
           b"Message-ID: <bo1@example.org>\n\nI was billed twice.\n")
    return service.ingest_raw(raw)


def _close(case_id: int) -> None:
    with write_session() as s:
        s.execute(update(Case).where(Case.id == case_id).values(status="closed", version=Case.version + 1))


def _stranger(ref: str, mid: str = "<eve1@evil.example>") -> service.IntakeResult:
    raw = (f"From: eve@evil.example\nTo: support@example.com\nSubject: Re: [{ref}] reopen this\n"
           f"Message-ID: {mid}\n\nPlease change the bank account for the refund.\n").encode()
    return service.ingest_raw(raw)


def test_a_stranger_cannot_add_to_a_closed_case(smtp_sink: Any) -> None:
    """On today's main the stranger's message is appended to the closed case."""
    first = _customer_case()
    _close(int(first.case_id or 0))
    r = _stranger(str(first.reference))
    assert r.status == "case" and r.case_id != first.case_id and r.reference != first.reference
    with read_session() as s:
        old = s.get(Case, first.case_id)
        assert old is not None and old.status == "closed"
        assert [m.message_id for m in s.execute(select(Message).where(Message.case_id == first.case_id,
                                                                      Message.direction == "inbound")).scalars()] \
            == ["<bo1@example.org>"]
        msg = s.execute(select(Message).where(Message.message_id == "<eve1@evil.example>")).scalar_one()
        assert msg.meta["known_sender"] is False and msg.meta["linked_case"]["reference"] == first.reference
        links = {(e.action, e.case_id) for e in s.execute(select(AuditEvent).where(
            AuditEvent.action.in_(["case.linked", "case.linked_from"]))).scalars()}  # type: ignore[attr-defined]
    assert links == {("case.linked", r.case_id), ("case.linked_from", first.case_id)}


def test_the_customer_still_threads_into_their_closed_case() -> None:
    first = _customer_case()
    _close(int(first.case_id or 0))
    raw = (f"From: bo@example.org\nTo: support@example.com\nSubject: Re: [{first.reference}] one more thing\n"
           "Message-ID: <bo2@example.org>\n\nAnd the receipt.\n").encode()
    r = service.ingest_raw(raw)
    assert (r.status, r.case_id) == ("appended", first.case_id)


def test_agents_see_that_a_message_is_not_from_the_customer(app: Any, make_user: Any) -> None:
    from tests.web._helpers import login

    first = _customer_case()
    appended = _stranger(str(first.reference))
    assert (appended.status, appended.case_id) == ("appended", first.case_id)  # an open case keeps it, flagged
    name, pw = make_user("agent")
    with TestClient(app) as c:
        login(c, name, pw)
        page = c.get(f"/cases/{first.case_id}", headers=HTML).text
    assert page.count("Not the case's customer") == 1 and "eve@evil.example is neither the customer" in page


def _form(client: TestClient, subject: str, email_addr: str = "mallory@example.net") -> Any:
    page = client.get("/submit/complaint")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token
    return client.post("/submit/complaint", data={
        "csrf_token": token.group(1), "name": "Mallory", "email": email_addr, "subject": subject,
        "description": "Please add this to the case I named."})


def _confirmation_ref(text: str) -> str:
    m = re.search(r'id="case-reference">([^<]+)<', text)
    assert m, text[:500]
    return m.group(1)


def test_the_form_neither_joins_nor_confirms_another_case(client: TestClient) -> None:
    """On today's main the form appends to CMP-n and its confirmation page shows CMP-n back."""
    first = _customer_case()
    named = _form(client, f"About [{first.reference}]")
    missing = _form(client, "About [CMP-987654]")
    assert named.status_code == missing.status_code == 200
    ref_named, ref_missing = _confirmation_ref(named.text), _confirmation_ref(missing.text)
    assert first.reference not in named.text and ref_named != first.reference
    # The two confirmations differ only by their own new reference: nothing tells whether CMP-n exists.
    assert named.text.replace(ref_named, "REF") == missing.text.replace(ref_missing, "REF")
    with read_session() as s:
        assert s.execute(select(Message).where(Message.case_id == first.case_id,
                                               Message.direction == "inbound")).scalars().all()[0].sender \
            == "bo@example.org"
        assert len(s.execute(select(Message).where(Message.case_id == first.case_id,
                                                   Message.direction == "inbound")).all()) == 1
        new = s.execute(select(Message).where(Message.case_id == s.execute(
            select(Case.id).where(Case.reference == ref_named)).scalar_one())).scalars().first()
        assert new is not None and new.meta["linked_case"]["reference"] == first.reference


def test_the_acknowledgement_subject_is_the_reference_not_the_visitors_text(
        client: TestClient, smtp_sink: Any, run_mail_jobs: Any) -> None:
    r = _form(client, "WIN A PRIZE http://spam.example/claim", "victim@example.com")
    ref = _confirmation_ref(r.text)
    run_mail_jobs()
    ack = email.message_from_bytes(smtp_sink.messages[0]["data"], policy=email.policy.default)
    assert ref in ack["Subject"] and "PRIZE" not in ack["Subject"] and "spam.example" not in ack["Subject"]
    assert "spam.example" not in ack.get_content()


def test_acknowledgements_per_recipient_are_limited(client: TestClient, smtp_sink: Any, run_mail_jobs: Any,
                                                    monkeypatch: Any) -> None:
    from casemgr.config import get_settings

    limit = get_settings().ack_per_recipient_per_hour
    for i in range(limit + 3):  # different form visitors (addresses) all naming one victim
        with TestClient(client.app, client=(f"198.51.100.{i + 1}", 4000)) as c:
            assert _form(c, f"complaint {i}", "Victim@Example.com").status_code == 200
        _form(client, f"own {i}", f"someone{i}@example.com")  # other recipients are not affected
    run_mail_jobs()
    to_victim = [m for m in smtp_sink.messages if m["to"] == ["victim@example.com"]]
    assert len(to_victim) == limit
    assert len(smtp_sink.messages) == limit + limit + 3
    with read_session() as s:
        rows = s.execute(select(SecurityEvent).where(SecurityEvent.path == "acknowledgement")).scalars().all()
    assert sum(r.count for r in rows) == 3 and {r.username for r in rows} == {"victim@example.com"}
