"""The mail group commit waits for announced messages (issue 23), and each message of a batch keeps its own outcome.

An SMTP session that sent MAIL FROM announces its message (casemgr.groupcommit.GroupCommit.expect); the writer
waits for announced messages, up to gather_s, so concurrent senders share one commit and fsync instead of
alternating batches of one and three. These tests hold the writer to: announced items are waited for, a withdrawn
or stale announcement holds nobody up, the SMTP server withdraws what will not come (RSET, QUIT, a lost
connection, a message that took another path), and one bad message in a batch gets its own error while the
others of the batch are stored with theirs.
"""

from __future__ import annotations

import smtplib
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select

from casemgr.audit import service as audit
from casemgr.cases.models import Case
from casemgr.config import get_settings
from casemgr.db import read_session
from casemgr.groupcommit import GroupCommit
from casemgr.intake import mailbatch, service
from casemgr.intake.models import Message, QuarantinedMessage
from casemgr.intake.parse import parse_message

RESULT_WAIT_S = 30  # far beyond any batch on a loaded machine; the gathering windows below are longer still


class Recorder:
    """A store_many that records the batches it was given."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []

    def __call__(self, items: Sequence[str]) -> list[str]:
        self.batches.append(list(items))
        return [f"stored {i}" for i in items]


def test_announced_items_are_waited_for_and_share_one_batch() -> None:
    rec = Recorder()
    gc: GroupCommit[str, str] = GroupCommit("t-gather", rec, lambda i: f"alone {i}", gather_s=60)
    tickets = [gc.expect() for _ in range(3)]
    first = gc._enqueue("a", tickets[0])  # the writer starts and waits: b and c are announced
    time.sleep(0.5)  # long enough for a writer that does not wait to have stored "a" on its own
    later = []
    for name, ticket in (("b", tickets[1]), ("c", tickets[2])):
        later.append(gc._enqueue(name, ticket))
    assert [f.result(RESULT_WAIT_S) for f in (first, *later)] == ["stored a", "stored b", "stored c"]
    assert rec.batches == [["a", "b", "c"]]


def test_a_withdrawn_announcement_holds_nobody_up() -> None:
    rec = Recorder()
    gc: GroupCommit[str, str] = GroupCommit("t-withdraw", rec, lambda i: f"alone {i}", gather_s=600)
    mine, gone = gc.expect(), gc.expect()
    fut = gc._enqueue("a", mine)
    threading.Timer(0.2, gc.release, args=(gone,)).start()
    # Without the release the writer would wait the whole 600 s gathering window.
    assert fut.result(RESULT_WAIT_S) == "stored a"
    gc.release(mine)  # already used by the submission: a no-op
    assert rec.batches == [["a"]]


def test_a_stalled_sender_delays_a_batch_by_the_gathering_window_at_most() -> None:
    rec = Recorder()
    gc: GroupCommit[str, str] = GroupCommit("t-stall", rec, lambda i: f"alone {i}", gather_s=0.3)
    gc.expect()  # announced, never sent, never withdrawn
    assert gc.submit("a") == "stored a"
    assert gc.submit("b") == "stored b"
    assert rec.batches == [["a"], ["b"]]


def test_without_announcements_nothing_waits() -> None:
    rec = Recorder()
    gc: GroupCommit[str, str] = GroupCommit("t-none", rec, lambda i: f"alone {i}", gather_s=600)
    assert gc.submit("a") == "stored a"


# ---------------------------------------------------------------- the SMTP server's announcements


@pytest.fixture
def queued_ai() -> Any:
    settings = get_settings()
    saved = settings.ai_inline, settings.intake_group_commit
    settings.ai_inline, settings.intake_group_commit = False, True
    yield
    settings.ai_inline, settings.intake_group_commit = saved


def _mail(tag: str, sender: str = "ann@example.org", extra: str = "") -> bytes:
    return (f"From: Ann Example <{sender}>\r\nTo: complaints@example.com\r\nSubject: Charged twice {tag}\r\n"
            f"Message-ID: <{tag}.{uuid.uuid4().hex}@mail.example>\r\nDate: Tue, 24 Nov 2026 10:00:00 +0000\r\n"
            f"{extra}\r\nMy credit card was charged twice and the bank refuses a refund.\r\n").encode()


def _outstanding() -> int:
    with mailbatch.mail._cond:
        return len(mailbatch.mail._expected)


def _wait_outstanding(n: int) -> None:
    deadline = time.monotonic() + RESULT_WAIT_S
    while _outstanding() != n:
        assert time.monotonic() < deadline, f"{_outstanding()} announcements outstanding, expected {n}"
        time.sleep(0.01)


def test_smtp_sessions_announce_at_mail_from_and_withdraw_what_will_not_come(
        queued_ai: None, intake_smtp: tuple[str, int]) -> None:
    base = _outstanding()
    with smtplib.SMTP(*intake_smtp, timeout=30) as smtp:
        smtp.ehlo()
        assert smtp.mail("ann@example.org")[0] == 250
        _wait_outstanding(base + 1)
        smtp.rset()
        _wait_outstanding(base)
        smtp.mail("ann@example.org")
        smtp.rcpt("complaints@example.com")
        _wait_outstanding(base + 1)
        # The message is delivered: its announcement is used up by the queued message.
        assert smtp.data(_mail("one"))[0] == 250
        _wait_outstanding(base)
        smtp.mail("ann@example.org")
        _wait_outstanding(base + 1)
    _wait_outstanding(base)  # QUIT withdrew it
    sock = socket.create_connection(intake_smtp, timeout=30)
    sock.recv(1024)
    sock.sendall(b"EHLO test\r\n")
    sock.recv(1024)
    sock.sendall(b"MAIL FROM:<ann@example.org>\r\n")
    assert sock.recv(1024).startswith(b"250")
    _wait_outstanding(base + 1)
    sock.close()  # the sender vanishes mid-transaction
    _wait_outstanding(base)
    # A message without a usable sender goes to the quarantine, not to the group commit: withdrawn as well.
    with smtplib.SMTP(*intake_smtp, timeout=30) as smtp:
        raw = _mail("nosender").replace(b"From: Ann Example <ann@example.org>\r\n", b"")
        smtp.sendmail("", ["complaints@example.com"], raw)
        _wait_outstanding(base)
    with read_session() as s:
        assert s.execute(select(func.count()).select_from(QuarantinedMessage)).scalar_one() == 1


def test_concurrent_smtp_senders_share_batches_and_every_message_is_stored_once(
        queued_ai: None, intake_smtp: tuple[str, int]) -> None:
    senders, per_sender = 4, 6
    errors: list[BaseException] = []
    before_batches, before_items = mailbatch.mail.batches, mailbatch.mail.items

    def run(k: int) -> None:
        try:
            with smtplib.SMTP(*intake_smtp, timeout=60) as smtp:
                for j in range(per_sender):
                    smtp.sendmail(f"s{k}@example.org", ["complaints@example.com"],
                                  _mail(f"s{k}m{j}", sender=f"s{k}@example.org"))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(senders)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    n = senders * per_sender
    assert mailbatch.mail.items - before_items == n
    assert mailbatch.mail.batches - before_batches < n
    with read_session() as s:
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == n
        assert s.execute(select(func.count(func.distinct(Message.message_id)))
                         .where(Message.direction == "inbound")).scalar_one() == n
        assert audit.verify(s).ok
    assert _outstanding() == 0


# ---------------------------------------------------------------- one bad message in a batch


def _item(raw: bytes) -> mailbatch.MailItem:
    pm = parse_message(raw)
    kwargs = {"channel": "email", "case_channel": "email", "actor": service.ACTOR, "source": "smtp:127.0.0.1",
              "envelope_to": ["complaints@example.com"], "force": False, "quarantine_id": None}
    return mailbatch.MailItem(pm, raw, kwargs, mailbatch.plan_new_case(pm, raw, kwargs))


def test_one_bad_message_in_a_batch_gets_its_own_error_and_the_others_their_results(
        queued_ai: None, monkeypatch: pytest.MonkeyPatch) -> None:
    opened = service.ingest_raw(_mail("open"), envelope_to=["complaints@example.com"])
    with read_session() as s:
        inbound = s.execute(select(Message.message_id).where(Message.case_id == opened.case_id)
                            .where(Message.direction == "inbound")).scalar_one()
    bad_raw = _mail("bad", extra=f"In-Reply-To: {inbound}\r\n")  # a reply: stored by the ordinary path
    items = [_item(_mail("good1", sender="g1@example.org")), _item(bad_raw),
             _item(_mail("good2", sender="g2@example.org")),
             _item(_mail("reply", extra=f"In-Reply-To: {inbound}\r\n").replace(b"Charged twice", b"Re: Charged")),
             _item(_mail("nosender").replace(b"From: Ann Example <ann@example.org>\r\n", b""))]
    assert items[0].planned is not None and items[1].planned is None and items[2].planned is not None
    bad_id = items[1].pm.message_id
    real = service._store

    def store(session: Any, pm: Any, raw: bytes, **kwargs: Any) -> Any:
        if pm.message_id == bad_id:
            raise RuntimeError("this message cannot be stored")
        return real(session, pm, raw, **kwargs)

    monkeypatch.setattr(service, "_store", store)
    results = mailbatch.store_many(items)
    assert isinstance(results[1], RuntimeError)  # the delivery answers 451 and the sender retries it
    good1, good2, reply, nosender = results[0], results[2], results[3], results[4]
    assert not isinstance(good1, BaseException) and not isinstance(good2, BaseException)
    assert not isinstance(reply, BaseException) and not isinstance(nosender, BaseException)
    assert good1.status == good2.status == "case" and good1.case_id != good2.case_id
    assert reply.status == "appended" and reply.case_id == opened.case_id
    assert nosender.status == "quarantined"
    with read_session() as s:
        stored = set(s.execute(select(Message.message_id).where(Message.direction == "inbound")).scalars())
        assert bad_id not in stored
        assert {items[i].pm.message_id for i in (0, 2, 3)} <= stored
        senders = dict(s.execute(select(Case.id, Case.subject).where(Case.id.in_([good1.case_id, good2.case_id])))
                       .all())
        assert senders[good1.case_id].endswith("good1") and senders[good2.case_id].endswith("good2")
        assert audit.verify(s).ok
    monkeypatch.setattr(service, "_store", real)
    retried = service.ingest_raw(bad_raw, envelope_to=["complaints@example.com"], grouped=True)
    assert retried.status == "appended" and retried.case_id == opened.case_id
