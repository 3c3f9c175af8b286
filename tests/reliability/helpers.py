"""Shared helpers for fault and hostile-input tests: mail, counting, and a whole-database consistency check."""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
from collections import Counter
from email.utils import format_datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from casemgr.audit import service as audit
from casemgr.audit.models import AuditEvent
from casemgr.cases.models import Case
from casemgr.clock import now
from casemgr.db import read_session
from casemgr.intake.models import Message
from casemgr.jobs.models import Job

ROOT = Path(__file__).resolve().parents[2]
CASEMGR = [sys.executable, "-m", "casemgr.cli"]


def raw_mail(message_id: str, subject: str = "Card charged twice", body: str = "I was charged twice for one order.",
             to: str = "complaints@example.com", sender: str = "ann@example.org", extra: str = "") -> bytes:
    return (f"From: Ann Customer <{sender}>\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
            f"Date: {format_datetime(now())}\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
            f"{extra}\r\n{body}\r\n").encode()


def send_mail(addr: tuple[str, int], raw: bytes, to: str = "complaints@example.com") -> dict[str, Any]:
    with smtplib.SMTP(addr[0], addr[1], timeout=60) as smtp:
        return smtp.sendmail("ann@example.org", [to], raw)


def inbound_count() -> int:
    with read_session() as s:
        return int(s.execute(select(func.count()).select_from(Message).where(Message.direction == "inbound"))
                   .scalar_one())


def case_count() -> int:
    with read_session() as s:
        return int(s.execute(select(func.count()).select_from(Case)).scalar_one())


def job_statuses(kind: str) -> Counter[str]:
    with read_session() as s:
        return Counter(s.execute(select(Job.status).where(Job.kind == kind)).scalars())


def assert_consistent() -> dict[str, int]:
    """Nothing half-written: every case was created once and audited; every inbound message belongs to a stored
    case and was audited once; every intake case has its message; the hash chain verifies. Returns counts."""
    with read_session() as s:
        cases = {c.id: c for c in s.execute(select(Case)).scalars()}
        msgs = list(s.execute(select(Message).where(Message.direction == "inbound")).scalars())
        events = list(s.execute(select(AuditEvent.action, AuditEvent.case_id, AuditEvent.entity)).all())
        created = Counter(cid for action, cid, _ in events if action == "case.created")
        msg_events = Counter(entity for action, _, entity in events if action in ("message.received",
                                                                                  "message.appended"))
        result = audit.verify(s)
    assert result.ok, result
    assert all(created[cid] == 1 for cid in cases), {cid: created[cid] for cid in cases if created[cid] != 1}
    assert set(created) <= set(cases), "audit says a case was created that is not in the database"
    by_case = Counter(m.case_id for m in msgs)
    for m in msgs:
        assert m.case_id is None or m.case_id in cases, f"message {m.id} points at a missing case"
        assert msg_events[f"message:{m.id}"] == 1, f"message {m.id} audited {msg_events[f'message:{m.id}']} times"
        assert m.raw is not None and m.raw_sha256, f"message {m.id} lost its raw source"
    for cid, case in cases.items():
        if case.channel in ("email", "form", "api"):
            assert by_case[cid] >= 1, f"case {cid} ({case.channel}) has no stored message"
        assert case.version >= 1
    return {"cases": len(cases), "messages": len(msgs), "audit_events": result.checked}


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CASEMGR, *args], cwd=ROOT, env=env or os.environ.copy(), capture_output=True,
                          text=True, timeout=timeout)
