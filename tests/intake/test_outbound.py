"""Outbound mail through a real loopback SMTP sink: agent replies, threading headers, idempotent sending."""

from __future__ import annotations

import email
import email.policy
from typing import Any

import pytest
from sqlalchemy import select

from casemgr.cases.models import Case
from casemgr.db import read_session, write_session
from casemgr.errors import ValidationFailed
from casemgr.intake import outbound, service
from casemgr.intake.models import Message
from casemgr.jobs.models import Job
from casemgr.runtime import rebuild


def _case(subject: str = "Billing problem") -> service.IntakeResult:
    raw = (f"From: Bo <bo@example.org>\nTo: support@example.com\nSubject: {subject}\nMessage-ID: <in1@example.org>\n"
           "References: <older@example.org>\n\nI was billed twice.\n").encode()
    return service.ingest_raw(raw)


def test_agent_reply_is_sent_once_with_threading_headers(smtp_sink: Any, run_mail_jobs: Any) -> None:
    r = _case()
    run_mail_jobs()  # the acknowledgement
    smtp_sink.messages.clear()
    with read_session() as s:
        v = s.get(Case, r.case_id).version  # type: ignore[union-attr]
    with write_session() as s:
        msg = outbound.send_reply(s, r.case_id, "We refunded the second charge.", "user:agent1")  # type: ignore[arg-type]
        pk = msg.id
    assert run_mail_jobs() == 1
    assert len(smtp_sink.messages) == 1
    sent = email.message_from_bytes(smtp_sink.messages[0]["data"], policy=email.policy.default)
    assert sent["To"] == "bo@example.org" and f"[{r.reference}]" in sent["Subject"]
    with read_session() as s:
        row = s.get(Message, pk)
        assert row is not None and row.status == "sent" and row.direction == "outbound"
        assert sent["Message-ID"] == row.message_id
        ack = s.execute(select(Message).where(Message.meta["kind"].as_string() == "ack")).scalar_one()
        assert sent["In-Reply-To"] == ack.message_id  # replies to the latest message on the thread
        assert "<older@example.org>" in sent["References"] and "<in1@example.org>" in sent["References"]
        assert s.get(Case, r.case_id).version == v + 1  # type: ignore[union-attr]
    # Running the same job again (a worker retry after a crash) does not send it twice.
    with write_session() as s:
        outbound.send_mail_job(s, s.execute(select(Job).where(Job.payload["message_pk"].as_integer() == pk))
                               .scalar_one())
    assert len(smtp_sink.messages) == 1


def test_header_injection_in_reply_subject_is_neutralised(smtp_sink: Any, run_mail_jobs: Any) -> None:
    r = _case()
    with write_session() as s:
        case = s.get(Case, r.case_id)
        assert case is not None
        case.subject = "Hello\r\nBcc: victim@evil.example\r\nX-Evil: 1"
        s.add(case)
    with write_session() as s:
        outbound.send_reply(s, r.case_id, "body\r\n.\r\nMAIL FROM:<x@y>", "user:agent1")  # type: ignore[arg-type]
    run_mail_jobs()
    for m in smtp_sink.messages:
        assert m["to"] == ["bo@example.org"]
        parsed = email.message_from_bytes(m["data"], policy=email.policy.default)
        assert parsed["Bcc"] is None and parsed["X-Evil"] is None


def test_reply_needs_body_and_address() -> None:
    r = _case()
    with pytest.raises(ValidationFailed), write_session() as s:
        outbound.send_reply(s, r.case_id, "   ", "user:a")  # type: ignore[arg-type]
    with pytest.raises(ValidationFailed), write_session() as s:
        outbound.send_reply(s, r.case_id, "hi", "user:a", to="not an address")  # type: ignore[arg-type]


def test_relay_down_keeps_message_queued_then_sends(monkeypatch: pytest.MonkeyPatch, smtp_sink: Any) -> None:
    from casemgr.bench.serving import free_port

    r = _case()
    dead_port = free_port()  # nothing listens there
    monkeypatch.setenv("CASEMGR_SMTP_RELAY_PORT", str(dead_port))
    rebuild()
    with read_session() as s:
        job = s.execute(select(Job).where(Job.kind == "mail.send")).scalar_one()
        pk = job.payload["message_pk"]
    with pytest.raises(OSError), write_session() as s:
        outbound.send_mail_job(s, s.get(Job, job.id))  # type: ignore[arg-type]
    with read_session() as s:
        assert s.get(Message, pk).status == "queued"  # type: ignore[union-attr]
    monkeypatch.setenv("CASEMGR_SMTP_RELAY_PORT", str(smtp_sink.port))
    rebuild()
    with write_session() as s:
        outbound.send_mail_job(s, s.get(Job, job.id))  # type: ignore[arg-type]
    assert len(smtp_sink.messages) == 1
    with read_session() as s:
        assert s.get(Message, pk).status == "sent"  # type: ignore[union-attr]
    assert r.status == "case"


def test_no_relay_configured_delivers_to_the_local_outbox_not_a_silent_drop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CASEMGR_SMTP_RELAY_HOST", raising=False)
    rebuild()
    _case()
    with read_session() as s:
        job = s.execute(select(Job).where(Job.kind == "mail.send")).scalar_one()
    with write_session() as s:
        outbound.send_mail_job(s, s.get(Job, job.id))  # type: ignore[arg-type]
    with read_session() as s:
        msg = s.get(Message, job.payload["message_pk"])
    assert msg is not None and msg.status == "outbox" and msg.meta["outbox_at"]


def test_long_synthetic_message_id_is_not_folded_in_threading_headers(smtp_sink: Any, run_mail_jobs: Any) -> None:
    r = service.ingest_raw(b"From: Di <di@example.org>\nTo: support@example.com\nSubject: no id\n\nhello\n")
    run_mail_jobs()
    ack = email.message_from_bytes(smtp_sink.messages[0]["data"], policy=email.policy.default)
    with read_session() as s:
        inbound = s.execute(select(Message).where(Message.case_id == r.case_id, Message.direction == "inbound")
                            ).scalar_one()
    assert len(inbound.message_id or "") > 78
    assert ack["In-Reply-To"] == inbound.message_id and b"=?utf-8?" not in smtp_sink.messages[0]["data"]


def test_reply_goes_to_the_customer_not_to_a_stranger_who_used_the_reference(smtp_sink: Any,
                                                                             run_mail_jobs: Any) -> None:
    r = _case()
    stranger = (f"From: eve@evil.example\nTo: support@example.com\nSubject: Re: [{r.reference}] give me the file\n"
                "Message-ID: <eve@evil.example>\n\nPlease send everything to me.\n").encode()
    appended = service.ingest_raw(stranger)
    assert (appended.status, appended.case_id) == ("appended", r.case_id)
    with read_session() as s:
        m = s.execute(select(Message).where(Message.message_id == "<eve@evil.example>")).scalar_one()
        assert m.meta["known_sender"] is False
    with write_session() as s:
        outbound.send_reply(s, r.case_id, "Here is the status.", "user:agent1")  # type: ignore[arg-type]
    run_mail_jobs()
    assert [m["to"] for m in smtp_sink.messages] == [["bo@example.org"], ["bo@example.org"]]
