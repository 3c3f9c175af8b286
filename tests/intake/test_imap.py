"""IMAP polling against a real Dovecot on loopback: store first, then flag or move; safe to run twice."""

from __future__ import annotations

import imaplib
import json
import smtplib
import ssl
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from casemgr.cases.models import Case
from casemgr.db import read_session
from casemgr.intake import imap
from casemgr.intake.models import Message, QuarantinedMessage

PASSWORD = "imap-test-password"


def mail(mid: str, subject: str = "Overdraft fee charged twice") -> bytes:
    return (f"From: Cy <cy@example.org>\r\nTo: complaints@example.com\r\nSubject: {subject}\r\n"
            f"Message-ID: {mid}\r\n\r\nI was charged an overdraft fee twice this month.\r\n").encode()


def mailbox(dovecot: Any, user: str) -> imaplib.IMAP4_SSL:
    conn = imaplib.IMAP4_SSL(dovecot.host, dovecot.imaps_port,
                             ssl_context=ssl.create_default_context(cafile=dovecot.ca_file))
    conn.login(user, PASSWORD)
    return conn


def deliver(dovecot: Any, user: str, *raws: bytes, folder: str = "INBOX") -> None:
    conn = mailbox(dovecot, user)
    for raw in raws:
        typ, _ = conn.append(folder, None, None, raw)
        assert typ == "OK"
    conn.logout()


def flags(dovecot: Any, user: str, folder: str = "INBOX") -> list[bytes]:
    conn = mailbox(dovecot, user)
    conn.select(folder)
    typ, data = conn.uid("FETCH", "1:*", "(FLAGS)")
    conn.logout()
    return [d for d in data if d]


def inbound() -> int:
    with read_session() as s:
        return int(s.execute(select(func.count()).select_from(Message).where(Message.direction == "inbound"))
                   .scalar_one())


def poll(dovecot: Any, user: str, **kw: Any) -> list[imap.PollResult]:
    return imap.poll(dovecot.host, dovecot.imaps_port, user, PASSWORD, tls="ssl", ca_file=dovecot.ca_file, **kw)


def test_poll_stores_then_marks_seen_and_second_run_is_a_noop(dovecot: Any) -> None:
    deliver(dovecot, "user1", mail("<i1@example.org>"), mail("<i2@example.org>", "Re: x"),
            b"To: complaints@example.com\r\nSubject: nobody sent this\r\n\r\nhi\r\n")
    results = poll(dovecot, "user1")
    assert sorted(r.result.status for r in results) == ["case", "case", "quarantined"]
    assert all(b"\\Seen" in f for f in flags(dovecot, "user1"))
    assert poll(dovecot, "user1") == []
    with read_session() as s:
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == 2
        assert s.execute(select(func.count()).select_from(QuarantinedMessage)).scalar_one() == 1


def test_crash_before_flagging_means_refetch_is_a_duplicate(dovecot: Any) -> None:
    deliver(dovecot, "user2", mail("<crash@example.org>"))
    assert [r.result.status for r in poll(dovecot, "user2")] == ["case"]
    # Simulate a crash after the commit but before the \Seen flag reached the server.
    conn = mailbox(dovecot, "user2")
    conn.select("INBOX")
    conn.uid("STORE", "1:*", "-FLAGS", r"(\Seen)")
    conn.logout()
    assert [r.result.status for r in poll(dovecot, "user2")] == ["duplicate"]
    assert inbound() == 1


def test_storage_failure_leaves_message_unseen_for_next_run(dovecot: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    def down(*a: Any, **k: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    deliver(dovecot, "user3", mail("<down@example.org>"))
    real = imap.ingest_raw
    monkeypatch.setattr(imap, "ingest_raw", down)
    with pytest.raises(OperationalError):
        poll(dovecot, "user3")
    assert all(b"\\Seen" not in f for f in flags(dovecot, "user3"))
    monkeypatch.setattr(imap, "ingest_raw", real)  # not undo(): that would also undo the per-test DB env
    assert [r.result.status for r in poll(dovecot, "user3")] == ["case"]
    assert inbound() == 1


def test_starttls_and_move_to_archive(dovecot: Any) -> None:
    conn = mailbox(dovecot, "user4")
    conn.create("Archive")
    conn.logout()
    deliver(dovecot, "user4", mail("<mv1@example.org>"), mail("<mv2@example.org>", "other"))
    results = imap.poll(dovecot.host, dovecot.imap_port, "user4", PASSWORD, tls="starttls", ca_file=dovecot.ca_file,
                        move_to="Archive")
    assert [r.result.status for r in results] == ["case", "case"]
    assert flags(dovecot, "user4") == []
    assert len(flags(dovecot, "user4", "Archive")) == 2


def test_same_message_by_smtp_and_imap_is_one_case(dovecot: Any, intake_smtp: tuple[str, int]) -> None:
    raw = mail("<both@example.org>")
    with smtplib.SMTP(*intake_smtp, timeout=30) as smtp:
        smtp.sendmail("cy@example.org", ["complaints@example.com"], raw)
    # The mailbox copy went through another MTA: extra trace headers, same Message-ID.
    deliver(dovecot, "user5", b"Received: from mx.example.com by imap.example.com\r\n" + raw)
    assert [r.result.status for r in poll(dovecot, "user5")] == ["duplicate"]
    # Without a Message-ID the content-derived id still matches across the two paths.
    no_id = b"From: Cy <cy@example.org>\r\nTo: complaints@example.com\r\nSubject: no id\r\n\r\nsame body\r\n"
    with smtplib.SMTP(*intake_smtp, timeout=30) as smtp:
        smtp.sendmail("cy@example.org", ["complaints@example.com"], no_id)
    deliver(dovecot, "user5", b"Received: from mx by imap\r\nDelivered-To: complaints@example.com\r\n" + no_id)
    assert [r.result.status for r in poll(dovecot, "user5")] == ["duplicate"]
    with read_session() as s:
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == 2


def test_cli_imap_poll_with_password_file(dovecot: Any, tmp_path: Path) -> None:
    from casemgr.cli import app

    deliver(dovecot, "user6", mail("<cli@example.org>"))
    pw = tmp_path / "pw"
    pw.write_text(PASSWORD + "\n")
    args = ["imap-poll", "--host", dovecot.host, "--port", str(dovecot.imaps_port), "--user", "user6",
            "--password-file", str(pw), "--ssl", "--ca-file", dovecot.ca_file, "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert [json.loads(x)["status"] for x in res.stdout.strip().splitlines()] == ["case"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0 and res.stdout.strip() == ""
    bad = CliRunner().invoke(app, [*args[:7], "--password", "wrong", "--ssl", "--ca-file", dovecot.ca_file])
    assert bad.exit_code == 1 and "imap-poll stopped" in bad.output


def test_a_chunk_of_messages_is_stored_through_the_mail_group_commit(dovecot: Any) -> None:
    from casemgr.intake import mailbatch

    deliver(dovecot, "user1", *[mail(f"<chunk{i}@example.org>", f"Chunk {i}") for i in range(12)])
    before = mailbatch.mail.items
    results = poll(dovecot, "user1")
    assert sorted(r.result.status for r in results) == ["case"] * 12
    assert mailbatch.mail.items - before == 12  # every message went through the mail group commit
    assert all(b"\\Seen" in f for f in flags(dovecot, "user1"))
    assert inbound() == 12
