"""The intake SMTP server on loopback: end to end, recipient and size limits, 451 on storage failure."""

from __future__ import annotations

import email
import email.policy
import smtplib
import sqlite3
from typing import Any

import pytest
from sqlalchemy import func, select

from casemgr.audit.models import AuditEvent
from casemgr.cases.models import Case
from casemgr.config import get_settings
from casemgr.db import read_session
from casemgr.intake.models import Message
from casemgr.runtime import rebuild

MAIL = (
    "From: Ann Lee <ann@example.org>\r\nTo: complaints@example.com\r\nSubject: {subject}\r\n"
    "Message-ID: {mid}\r\n{extra}\r\n"
    "My credit card was charged twice for the same purchase and the bank refuses to refund it.\r\n"
)


def raw_mail(mid: str, subject: str = "Double charge on my credit card", extra: str = "") -> bytes:
    return MAIL.format(mid=mid, subject=subject, extra=extra).encode()


def send(server: tuple[str, int], raw: bytes, to: str = "complaints@example.com") -> Any:
    with smtplib.SMTP(*server, timeout=30) as smtp:
        return smtp.sendmail("ann@example.org", [to], raw)


def inbound_count() -> int:
    with read_session() as s:
        return int(s.execute(select(func.count()).select_from(Message).where(Message.direction == "inbound"))
                   .scalar_one())


def test_smtp_delivery_end_to_end_classified_routed_audited(intake_smtp: tuple[str, int]) -> None:
    assert send(intake_smtp, raw_mail("<e2e@example.org>")) == {}
    with read_session() as s:
        case = s.execute(select(Case)).scalar_one()
        assert case.case_type == "complaint" and case.channel == "email"
        assert case.queue and case.rules_result is not None  # routed by the rules engine
        events = s.execute(select(AuditEvent).where(AuditEvent.case_id == case.id)
                           .order_by(AuditEvent.seq)).scalars().all()
        actions = [e.action for e in events]
        assert actions[0] == "case.created" and "message.received" in actions
        assert "message.ack_queued" in actions
        msg = s.execute(select(Message).where(Message.case_id == case.id, Message.direction == "inbound")
                        ).scalar_one()
        assert msg.meta["envelope_to"] == ["complaints@example.com"] and msg.meta["source"].startswith("smtp:")
    # Classification: inline enrichment (governance) fills case.ai / category, or a job is queued for it.
    from casemgr.jobs.models import Job

    with read_session() as s:
        case = s.execute(select(Case)).scalar_one()
        jobs = {j.kind for j in s.execute(select(Job)).scalars()}
    assert case.ai_status in ("ok", "unavailable", "off") or "ai.enrich" in jobs
    if case.ai_status == "ok":
        assert case.category or case.ai


def test_foreign_recipient_domain_gets_550(intake_smtp: tuple[str, int]) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused) as err:
        send(intake_smtp, raw_mail("<x@x>"), to="someone@not-ours.example")
    assert err.value.recipients["someone@not-ours.example"][0] == 550
    assert inbound_count() == 0


PAD = "".join(f"X-Pad: {'a' * 70}\r\n" for _ in range(80))


@pytest.fixture
def small_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEMGR_MAX_MESSAGE_BYTES", "2000")
    rebuild()


def test_oversized_message_gets_552(small_limit: None, intake_smtp: tuple[str, int]) -> None:
    # smtplib announces SIZE, so the server refuses at MAIL FROM; without SIZE it refuses after DATA. Both 552.
    with pytest.raises((smtplib.SMTPSenderRefused, smtplib.SMTPDataError)) as err:
        send(intake_smtp, raw_mail("<big@x>", extra=PAD))
    assert err.value.smtp_code == 552
    with smtplib.SMTP(*intake_smtp, timeout=30) as smtp:  # no SIZE parameter: rejected after the data
        smtp.ehlo()
        smtp.esmtp_features.pop("size", None)
        with pytest.raises(smtplib.SMTPDataError) as err2:
            smtp.sendmail("ann@example.org", ["complaints@example.com"],
                          raw_mail("<big2@x>", extra=PAD))
        assert err2.value.smtp_code == 552
    assert inbound_count() == 0


@pytest.mark.sqlite_only
def test_locked_database_gets_451_and_retry_is_stored_once(monkeypatch: pytest.MonkeyPatch,
                                                          intake_smtp: tuple[str, int]) -> None:
    monkeypatch.setenv("CASEMGR_SQLITE_BUSY_TIMEOUT_MS", "300")
    rebuild()
    db_path = get_settings().resolved_data_dir / "casemgr.sqlite3"
    locker = sqlite3.connect(db_path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(smtplib.SMTPDataError) as err:
            send(intake_smtp, raw_mail("<locked@example.org>"))
        assert err.value.smtp_code == 451
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert inbound_count() == 0
    # The sending server retries later: stored once, and a second retry is a duplicate, not a second case.
    assert send(intake_smtp, raw_mail("<locked@example.org>")) == {}
    assert send(intake_smtp, raw_mail("<locked@example.org>")) == {}
    assert inbound_count() == 1
    with read_session() as s:
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == 1


def test_store_failure_gets_451_then_retry_succeeds(monkeypatch: pytest.MonkeyPatch,
                                                   intake_smtp: tuple[str, int]) -> None:
    from sqlalchemy.exc import OperationalError

    from casemgr.intake import batch, service

    calls = {"n": 0}

    def flaky(real: Any) -> Any:
        def store(*args: Any, **kwargs: Any) -> Any:
            calls["n"] += 1
            if calls["n"] <= 2:  # SMTP stores by group commit: a message failing in its batch is tried once alone
                raise OperationalError("INSERT INTO messages", {}, Exception("database is unavailable"))
            return real(*args, **kwargs)
        return store

    # A new case is stored in bulk (batch.store_in), a retry alone by the ordinary path (service._store).
    monkeypatch.setattr(service, "_store", flaky(service._store))
    monkeypatch.setattr(batch, "store_in", flaky(batch.store_in))
    with pytest.raises(smtplib.SMTPDataError) as err:
        send(intake_smtp, raw_mail("<flaky@example.org>"))
    assert err.value.smtp_code == 451
    assert inbound_count() == 0
    assert send(intake_smtp, raw_mail("<flaky@example.org>")) == {}
    assert inbound_count() == 1


def test_reply_to_acknowledgement_lands_in_same_case(intake_smtp: tuple[str, int], smtp_sink: Any,
                                                     run_mail_jobs: Any) -> None:
    send(intake_smtp, raw_mail("<first@example.org>"))
    assert run_mail_jobs() == 1
    assert len(smtp_sink.messages) == 1 and smtp_sink.messages[0]["to"] == ["ann@example.org"]
    ack = email.message_from_bytes(smtp_sink.messages[0]["data"], policy=email.policy.default)
    with read_session() as s:
        case = s.execute(select(Case)).scalar_one()
    assert f"[{case.reference}]" in ack["Subject"]
    assert ack["In-Reply-To"] == "<first@example.org>" and "<first@example.org>" in ack["References"]
    # The customer's mail client replies to the acknowledgement: threads by In-Reply-To to the same case.
    reply = raw_mail("<reply@example.org>", subject=f"Re: {ack['Subject']}",
                     extra=f"In-Reply-To: {ack['Message-ID']}\r\nReferences: <first@example.org> {ack['Message-ID']}\r\n")
    assert send(intake_smtp, reply) == {}
    with read_session() as s:
        msgs = s.execute(select(Message).where(Message.direction == "inbound").order_by(Message.id)).scalars().all()
        assert [m.case_id for m in msgs] == [case.id, case.id]
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == 1
    assert run_mail_jobs() == 0  # a reply is not acknowledged again
