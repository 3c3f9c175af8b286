"""The weekly root-cause digest (issue 22): scheduled by the worker, sent to CASEMGR_ROOT_CAUSE_DIGEST_TO through
the outbox (the local outbox in demo mode, a real loopback SMTP relay otherwise), with the CSV attached."""

from __future__ import annotations

import email
import email.policy
from datetime import timedelta

import pytest
from sqlalchemy import select

from casemgr.audit.models import AuditEvent
from casemgr.clock import now
from casemgr.db import read_session, write_session
from casemgr.intake.models import Message
from casemgr.jobs import service as jobs
from casemgr.runtime import rebuild
from tests.web._helpers import HTML

from .helpers import closed_complaint

WEEK = 7 * 24 * 3600.0


def _seed() -> None:
    at = now()
    for _ in range(2):
        closed_complaint("system_error", at - timedelta(days=2), product="retail_banking", issue="account_access")
    closed_complaint("billing_error", at - timedelta(days=9), product="credit_card")


def _digests() -> list[Message]:
    with read_session() as s:
        return [m for m in s.execute(select(Message).where(Message.direction == "outbound")).scalars()
                if m.meta.get("kind") == "rootcause_digest"]


def test_no_address_no_digest(run_jobs) -> None:  # type: ignore[no-untyped-def]
    _seed()
    assert jobs.schedule_periodic("rootcause.digest", WEEK)
    run_jobs()
    assert _digests() == []


def test_weekly_digest_lands_in_the_outbox_once_per_week(run_jobs, monkeypatch: pytest.MonkeyPatch,
                                                         web_client) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CASEMGR_ROOT_CAUSE_DIGEST_TO", "product.owner@example.com")
    rebuild()
    _seed()
    assert jobs.schedule_periodic("rootcause.digest", WEEK)
    assert not jobs.schedule_periodic("rootcause.digest", WEEK)  # one per week window, however often asked
    run_jobs()
    run_jobs()  # the mail.send job the digest queued
    (msg,) = _digests()
    assert msg.status == "outbox" and msg.recipients == ["product.owner@example.com"] and msg.case_id is None
    assert "Closed with a confirmed cause: 2 (before: 1)" in msg.body_text
    assert "System or IT error: 2 (100 %), before 0, change +2" in msg.body_text
    assert "System or IT error / retail_banking: 0 -> 2 (+2)" in msg.body_text
    parsed = email.message_from_bytes(msg.raw or b"", policy=email.policy.default)
    (att,) = list(parsed.iter_attachments())
    assert att.get_filename().startswith("root-causes-") and "system_error" in att.get_content()
    with read_session() as s:
        ev = s.execute(select(AuditEvent).where(AuditEvent.action == "message.digest_queued")).scalars().one()
    assert ev.after["to"] == "product.owner@example.com" and ev.after["total"] == 2
    c, _ = web_client("admin")
    page = c.get("/admin/outbox?status=outbox", headers=HTML).text
    assert "Complaint root causes" in page and "product.owner@example.com" in page


def test_digest_through_a_real_relay(run_jobs, smtp_sink, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CASEMGR_ROOT_CAUSE_DIGEST_TO", "po@example.com")
    rebuild()
    _seed()
    with write_session() as s:
        jobs.enqueue(s, "rootcause.digest", {})
    run_jobs()
    run_jobs()
    (delivered,) = smtp_sink.messages
    assert delivered["to"] == ["po@example.com"] and b"Complaint root causes" in delivered["data"]
    (msg,) = _digests()
    assert msg.status == "sent"
