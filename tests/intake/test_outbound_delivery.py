"""Outbound delivery (issue 19): CRLF and folded lines, SMTPUTF8, permanent failures marked `failed` and shown,
and demo mode's local outbox (/admin/outbox) with an honest form confirmation. Real loopback SMTP relays."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from casemgr.db import read_session, write_session
from casemgr.intake import outbound, service
from casemgr.intake.models import Message
from casemgr.jobs.models import Job
from casemgr.runtime import rebuild


class Relay:
    """A loopback relay answering RCPT with `rcpt_reply` and recording what it accepted."""

    def __init__(self, rcpt_reply: str = "250 OK") -> None:
        self.rcpt_reply = rcpt_reply
        self.messages: list[dict[str, Any]] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          options: list[str]) -> str:
        if self.rcpt_reply.startswith("250"):
            envelope.rcpt_tos.append(address)
        return self.rcpt_reply

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append({"to": list(envelope.rcpt_tos), "data": envelope.original_content,
                              "options": list(envelope.mail_options)})
        return "250 OK"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def relay(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[Relay]:
    reply, smtputf8 = getattr(request, "param", ("250 OK", True))
    handler = Relay(reply)
    port = _port()
    # aiosmtpd's defaults are a strict relay: 1,001-octet line limit, so a bare-LF message is one long line.
    controller = Controller(handler, hostname="127.0.0.1", port=port, enable_SMTPUTF8=smtputf8)
    controller.start()
    monkeypatch.setenv("CASEMGR_SMTP_RELAY_HOST", "127.0.0.1")
    monkeypatch.setenv("CASEMGR_SMTP_RELAY_PORT", str(port))
    monkeypatch.setenv("CASEMGR_INTAKE_ACK", "false")
    rebuild()
    try:
        yield handler
    finally:
        controller.stop()


def _case(sender: str = "bo@example.org", subject: str = "Billing problem") -> int:
    raw = (f"From: Bo <{sender}>\r\nTo: support@example.com\r\nSubject: {subject}\r\n"
           f"Message-ID: <in-{abs(hash(sender))}@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           "I was billed twice.\r\n").encode()
    res = service.ingest_raw(raw)
    assert res.status == "case", res.reason
    assert res.case_id is not None
    return res.case_id


def _reply(case_id: int, body: str) -> int:
    with write_session() as s:
        msg = outbound.send_reply(s, case_id, body, "user:agent")
        assert msg.id is not None
        return msg.id


def _run(msg_pk: int, attempts: int = 1, max_attempts: int = 8) -> None:
    with read_session() as s:
        job_id = s.execute(select(Job.id).where(Job.kind == "mail.send",
                                                Job.payload["message_pk"].as_integer() == msg_pk)).scalar_one()
    with write_session() as s:
        job = s.get(Job, job_id)
        assert job is not None
        job.attempts, job.max_attempts = attempts, max_attempts
        outbound.send_mail_job(s, job)


def _msg(pk: int) -> Message:
    with read_session() as s:
        m = s.get(Message, pk)
        assert m is not None
        return m


def test_reply_is_crlf_with_lines_within_998_octets(relay: Relay) -> None:
    long_subject = "Mein Konto wurde doppelt belastet und niemand antwortet seit Wochen " * 5
    case_id = _case(subject=long_subject.strip())
    body = "Dear customer,\n" + "We have refunded the second charge. " * 80 + "\nÜbrigens: danke.\n"
    pk = _reply(case_id, body)
    _run(pk)
    assert _msg(pk).status == "sent"
    data = relay.messages[0]["data"]
    assert b"\n" not in data.replace(b"\r\n", b"")  # no bare LF
    assert max(len(line) for line in data.split(b"\r\n")) <= 998
    import email
    import email.policy

    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert parsed.get_content().replace("\r\n", "\n") == body


@pytest.mark.parametrize("relay", [("250 OK", True)], indirect=True)
def test_internationalised_address_uses_smtputf8_when_offered(relay: Relay) -> None:
    case_id = _case(sender="jörg@bücher.example")
    pk = _reply(case_id, "Your refund is on its way.")
    _run(pk)
    assert _msg(pk).status == "sent"
    assert "SMTPUTF8" in relay.messages[0]["options"]
    assert "To: jörg@bücher.example".encode() in relay.messages[0]["data"]


@pytest.mark.parametrize("relay", [("250 OK", False)], indirect=True)
def test_internationalised_address_fails_permanently_without_smtputf8(relay: Relay, agent_client: Any) -> None:
    case_id = _case(sender="jörg@bücher.example")
    pk = _reply(case_id, "Your refund is on its way.")
    _run(pk)
    msg = _msg(pk)
    assert msg.status == "failed" and "SMTPUTF8" in msg.meta["reason"]
    assert relay.messages == []
    page = agent_client.get(f"/cases/{case_id}")
    assert "reply not delivered:" in page.text and "SMTPUTF8" in page.text


@pytest.mark.parametrize("relay", [("550 5.1.1 mailbox unavailable", True)], indirect=True)
def test_permanent_5xx_marks_failed_at_once_shown_and_counted(relay: Relay, agent_client: Any,
                                                             client: Any, make_user: Any) -> None:
    case_id = _case()
    pk = _reply(case_id, "Your refund is on its way.")
    _run(pk, attempts=1)  # first attempt: no retry for a permanent refusal
    msg = _msg(pk)
    assert msg.status == "failed" and "550" in msg.meta["reason"] and "mailbox unavailable" in msg.meta["reason"]
    _run(pk, attempts=2)  # a stray retry does nothing
    assert _msg(pk).meta["failed_at"] == msg.meta["failed_at"]
    page = agent_client.get(f"/cases/{case_id}")
    assert re.search(r"reply not delivered: refused by the relay: bo@example.org: 550 5.1.1 mailbox unavailable",
                     page.text)
    from casemgr.db import write_session as ws
    from casemgr.metrics.service import compute_live

    with ws() as s:
        from casemgr.clock import now

        assert compute_live(s, now())["exceptions"]["outbound_failed"] == 1


@pytest.mark.parametrize("relay", [("451 4.3.0 try later", True)], indirect=True)
def test_temporary_failure_retries_then_fails_on_the_last_attempt(relay: Relay) -> None:
    import smtplib

    case_id = _case()
    pk = _reply(case_id, "Your refund is on its way.")
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        _run(pk, attempts=1, max_attempts=3)
    assert _msg(pk).status == "queued"
    _run(pk, attempts=3, max_attempts=3)
    msg = _msg(pk)
    assert msg.status == "failed" and msg.meta["reason"].startswith("gave up after 3 attempts: ")


def test_demo_mode_outbox_page_and_honest_form_confirmation(monkeypatch: pytest.MonkeyPatch, client: Any,
                                                            agent_client: Any, run_mail_jobs: Any) -> None:
    monkeypatch.delenv("CASEMGR_SMTP_RELAY_HOST", raising=False)
    monkeypatch.setenv("CASEMGR_INTAKE_ACK", "true")
    rebuild()
    page = client.get("/submit/complaint")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    res = client.post("/submit/complaint", data={"name": "Ann Lee", "email": "ann@example.org",
                                                 "subject": "Card charged twice",
                                                 "description": "I was charged twice.", "csrf_token": token})
    assert res.status_code == 200
    assert "We have sent a confirmation" not in res.text and "sending a confirmation" not in res.text
    assert "no confirmation email was sent" in res.text
    assert run_mail_jobs() == 1
    with read_session() as s:
        ack = s.execute(select(Message).where(Message.direction == "outbound")).scalar_one()
    assert ack.status == "outbox"
    box = agent_client.get("/admin/outbox")
    assert box.status_code == 200 and "ann@example.org" in box.text and "demo mode" in box.text
    assert "Thank you for contacting us" in box.text


def test_form_with_a_relay_says_a_confirmation_is_being_sent(smtp_sink: Any, monkeypatch: pytest.MonkeyPatch,
                                                             client: Any) -> None:
    monkeypatch.setenv("CASEMGR_INTAKE_ACK", "true")
    rebuild()
    page = client.get("/submit/complaint")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    res = client.post("/submit/complaint", data={"name": "Ann Lee", "email": "ann@example.org",
                                                 "subject": "Card charged twice",
                                                 "description": "I was charged twice.", "csrf_token": token})
    assert "We are sending a confirmation to ann@example.org" in res.text
