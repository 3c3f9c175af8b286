"""Nothing silently dropped (issue 19): Message-ID reuse, re-import of quarantined mail, lines over 1,000 octets.

All messages are built here (no third-party test mail).
"""

from __future__ import annotations

import json
import smtplib
from pathlib import Path

from sqlalchemy import func, select
from typer.testing import CliRunner

from casemgr.audit.models import AuditEvent
from casemgr.cases.models import Case
from casemgr.db import read_session
from casemgr.intake import service
from casemgr.intake.models import Message, QuarantinedMessage


def mail(mid: str, subject: str = "Card charged twice", body: str = "Please refund the second charge.",
         sender: str = "Ann Lee <ann@example.org>", extra: str = "") -> bytes:
    return (f"From: {sender}\r\nTo: complaints@example.com\r\nSubject: {subject}\r\nMessage-ID: {mid}\r\n"
            f"Date: Tue, 24 Nov 2026 10:00:00 +0000\r\n{extra}\r\n{body}\r\n").encode()


def inbound() -> list[Message]:
    with read_session() as s:
        return list(s.execute(select(Message).where(Message.direction == "inbound").order_by(Message.id)).scalars())


def test_different_message_reusing_a_message_id_is_stored_and_flagged() -> None:
    first = service.ingest_raw(mail("<reused@broken-mailer>", "Card charged twice"))
    other = service.ingest_raw(mail("<reused@broken-mailer>", "Loan statement wrong",
                                    "My loan statement shows a payment I never made.", sender="bob@example.net"))
    assert first.status == "case"
    assert other.status == "case" and other.case_id != first.case_id
    assert other.reason and "message-id-reused" in other.reason
    rows = inbound()
    assert len(rows) == 2
    assert "My loan statement" in rows[1].body_text
    assert rows[1].meta["flags"] == ["message-id-reused"]
    assert rows[1].meta["message_id_reused"]["message_id"] == "<reused@broken-mailer>"
    assert rows[1].meta["message_id_reused"]["first_message"] == rows[0].id
    with read_session() as s:
        ev = s.execute(select(AuditEvent).where(AuditEvent.entity == f"message:{rows[1].id}")).scalar_one()
    assert ev.after["flags"] == ["message-id-reused"]
    # The second message delivered again (another relay hop) is its duplicate; the first one still is the first's.
    again = service.ingest_raw(b"Received: from relay2 by mx\r\n" + mail(
        "<reused@broken-mailer>", "Loan statement wrong", "My loan statement shows a payment I never made.",
        sender="bob@example.net"))
    assert again.status == "duplicate" and again.case_id == other.case_id
    assert service.ingest_raw(mail("<reused@broken-mailer>", "Card charged twice")).status == "duplicate"
    assert len(inbound()) == 2


def test_reused_message_id_with_a_reference_threads_onto_the_case() -> None:
    first = service.ingest_raw(mail("<list@lists.example>", "Card charged twice"))
    reply = service.ingest_raw(mail("<list@lists.example>", f"Re: Card charged twice [{first.reference}]",
                                    "Any news on this?"))
    assert reply.status == "appended" and reply.case_id == first.case_id
    assert inbound()[1].meta["flags"] == ["message-id-reused"]


def test_reimporting_a_quarantined_message_says_duplicate_and_names_the_record(tmp_path: Path) -> None:
    from casemgr.cli import app

    bad = tmp_path / "nosender.eml"
    bad.write_bytes(b"From: undisclosed-recipients:;\r\nTo: complaints@example.com\r\nSubject: hi\r\n\r\nbody\r\n")
    runner = CliRunner()
    res1 = runner.invoke(app, ["intake", "eml", str(bad), "--json"])
    res2 = runner.invoke(app, ["intake", "eml", str(bad), "--json"])
    assert res1.exit_code == 0 and res2.exit_code == 0, res1.output + res2.output
    one, two = json.loads(res1.stdout), json.loads(res2.stdout)
    assert one["status"] == "quarantined"
    with read_session() as s:
        q = s.execute(select(QuarantinedMessage)).scalar_one()
    assert two["status"] == "duplicate" and f"quarantine #{q.id}" in two["reason"]
    text = runner.invoke(app, ["intake", "eml", str(bad)])
    assert f"duplicate quarantine #{q.id}" in text.stdout


def long_line_mail(mid: str, n: int = 5000) -> tuple[bytes, str]:
    line = "The charge appeared again " + "x" * n + " end of line"
    return mail(mid, body=line), line


def test_smtp_accepts_lines_over_1000_octets(intake_smtp: tuple[str, int]) -> None:
    raw, line = long_line_mail("<long@example.org>")
    with smtplib.SMTP(*intake_smtp, timeout=30) as smtp:
        refused = smtp.sendmail("ann@example.org", ["complaints@example.com"], raw)
    assert refused == {}
    assert inbound()[0].body_text == line


def test_smtp_still_refuses_a_message_over_the_size_limit(monkeypatch: object, intake_smtp: tuple[str, int]) -> None:
    raw, _ = long_line_mail("<huge@example.org>", n=30 * 1024 * 1024)
    with smtplib.SMTP(*intake_smtp, timeout=60) as smtp:
        try:
            smtp.sendmail("ann@example.org", ["complaints@example.com"], raw)
            raise AssertionError("a message over max_message_bytes was accepted")
        except smtplib.SMTPDataError as exc:
            assert exc.smtp_code == 552
        except smtplib.SMTPSenderRefused as exc:  # SIZE announced in MAIL FROM
            assert exc.smtp_code == 552
    assert inbound() == []


def test_eml_import_accepts_lines_over_1000_octets(tmp_path: Path) -> None:
    from casemgr.cli import app

    raw, line = long_line_mail("<long-eml@example.org>", n=20_000)
    path = tmp_path / "long.eml"
    path.write_bytes(raw)
    res = CliRunner().invoke(app, ["intake", "eml", str(path), "--json"])
    assert json.loads(res.stdout)["status"] == "case", res.output
    assert inbound()[0].body_text == line
    with read_session() as s:
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == 1
