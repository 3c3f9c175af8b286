"""The owner of a case hears of a customer reply and of an SLA warning; the bell counts unread ones."""

from __future__ import annotations

from datetime import UTC, datetime

from casemgr.cases.models import Case
from casemgr.db import read_session, write_session
from casemgr.intake import service as intake
from casemgr.sla import engine

from .conftest import versions


def _mail(mid: str, subject: str, extra: str = "") -> bytes:
    return (f"From: Ann Lee <ann@example.org>\r\nTo: complaints@example.com\r\nSubject: {subject}\r\n"
            f"Message-ID: {mid}\r\n{extra}\r\nPlease refund the second charge.\r\n").encode()


def test_customer_reply_and_sla_warning_notify_the_owner(person, time_machine) -> None:  # type: ignore[no-untyped-def]
    time_machine.move_to(datetime(2026, 11, 27, 14, 0, tzinfo=UTC), tick=False)  # a Friday, 4 business hours
    owner = person("olga", "agent")
    first = intake.ingest_raw(_mail("<n1@example.org>", "Card charged twice"))
    # Nobody owns the case yet: nobody is told about the reply.
    intake.ingest_raw(_mail("<n2@example.org>", f"Re: Card charged twice [{first.reference}]"))
    assert owner.client.get("/api/notifications").json()["unread"] == 0
    r = owner.client.post("/api/cases/bulk", json={"action": "claim", "cases": versions([first.case_id])})
    assert r.json()["results"][0]["result"] == "ok"
    reply = intake.ingest_raw(_mail("<n3@example.org>", f"Re: Card charged twice [{first.reference}]"))
    assert reply.status == "appended"
    got = owner.client.get("/api/notifications").json()
    assert got["unread"] == 1 and got["items"][0]["kind"] == "customer_reply"
    assert first.reference in got["items"][0]["text"]
    # 75 % of the target used at Friday's close: the scan warns, and the owner hears it.
    with write_session() as s:
        assert engine.scan(s, datetime(2026, 11, 27, 17, 0, tzinfo=UTC))["at_risk"] == 1
    got = owner.client.get("/api/notifications?unread=true").json()
    assert got["unread"] == 2 and got["items"][0]["kind"] == "sla_warning" and "SLA at risk" in got["items"][0]["text"]
    with read_session() as s:
        assert s.get(Case, first.case_id).sla_state == "at_risk"  # type: ignore[union-attr]
    assert owner.client.post("/api/notifications/read", json={}).json() == {"marked": 2, "unread": 0}
