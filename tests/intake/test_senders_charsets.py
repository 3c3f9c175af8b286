"""Lenient senders with recorded repairs, charsets that lie, and Unicode line separators (issues 18 and 19).

Every message here is built by the test (no third-party test mail).
"""

from __future__ import annotations

import smtplib
from email import message_from_bytes, policy
from typing import Any

import pytest
from sqlalchemy import select

from casemgr.cases.models import Case, Party
from casemgr.db import read_session
from casemgr.intake import service
from casemgr.intake.charsets import decode
from casemgr.intake.models import Message, QuarantinedMessage
from casemgr.intake.parse import parse_message

TAIL = b"To: complaints@example.com\r\nSubject: refund\r\nMessage-ID: <%s@example.org>\r\n\r\nPlease refund me.\r\n"


def msg(head: bytes, mid: str) -> bytes:
    return head + TAIL % mid.encode()


@pytest.mark.parametrize(("head", "sender", "name", "repair"), [
    # A long From broken onto a second line without the leading space (the parser lost the header block).
    (b'From: "Ann Customer of the Very Long Name Company"\r\n<ann@example.org>\r\n', "ann@example.org",
     "Ann Customer of the Very Long Name Company", "unfolded continuation line"),
    (b"From: Ann Lee <ann@example.org.>\r\n", "ann@example.org", "Ann Lee", "trailing dot"),
    # Raw Latin-1 bytes with an unquoted comma in the display name.
    (b"From: M\xfcller, J\xf6rg <jorg@example.de>\r\n", "jorg@example.de", "M\u00fcller, J\u00f6rg", "8-bit"),
    # An encoded word the mailer never closed.
    (b"From: =?utf-8?Q?J=C3=B6rg M\xc3\xbcller <jorg@example.de>\r\n", "jorg@example.de", "J\u00f6rg M\u00fcller",
     "unterminated encoded word"),
    (b"From: <>, Ann Lee <ann@example.org>\r\n", "ann@example.org", "Ann Lee", "first From address was empty"),
    (b"Reply-To: Ann Lee <ann@example.org>\r\n", "ann@example.org", "Ann Lee", "Reply-To"),
    (b"From: undisclosed-recipients:;\r\nSender: Ann Lee <ann@example.org>\r\n", "ann@example.org", "Ann Lee",
     "Sender"),
])
def test_sender_is_repaired_and_the_repair_recorded(head: bytes, sender: str, name: str, repair: str) -> None:
    raw = msg(head, "s1")
    pm = parse_message(raw)
    assert (pm.sender, pm.sender_name) == (sender, name)
    assert any(n.startswith("repaired:") and repair in n for n in pm.notes), pm.notes
    assert pm.subject == "refund" and pm.body_text == "Please refund me."
    res = service.ingest_raw(raw)
    assert res.status == "case", res.reason
    with read_session() as s:
        party = s.get(Party, s.get(Case, res.case_id).party_id)
        # Inbound only: the auto-acknowledgement is a second message of the case, and PostgreSQL returns rows
        # in no fixed order.
        stored = s.execute(select(Message).where(Message.case_id == res.case_id,
                                                 Message.direction == "inbound")).scalars().one()
    assert party.email == sender
    assert any(repair in n for n in stored.meta["notes"])
    assert stored.raw == raw  # the original bytes are kept


def test_mail_with_no_reply_address_anywhere_is_still_quarantined() -> None:
    res = service.ingest_raw(msg(b"From: undisclosed-recipients:;\r\nReply-To: nobody\r\n", "q1"))
    assert res.status == "quarantined" and "Reply-To" in (res.reason or "")
    with read_session() as s:
        assert s.execute(select(QuarantinedMessage)).scalar_one().raw is not None


# ---------------------------------------------------------------- charsets

CHINESE = "您好，我的信用卡被重复扣款了两次，请尽快帮我处理退款。"
TRADITIONAL = "您好，我的信用卡被重複扣款了兩次，請盡快幫我處理退款。"
JAPANESE = "お世話になっております。クレジットカードの二重請求についてです。"


@pytest.mark.parametrize(("text", "codec"), [
    (CHINESE, "gb2312"), (CHINESE, "gbk"), (TRADITIONAL, "big5"), ("发票有问题", "gbk"), ("請盡快處理退款", "big5"),
    (JAPANESE, "shift_jis"), (JAPANESE, "euc_jp"), ("환불 요청합니다", "euc-kr"),
    ("Здравствуйте, с моей карты дважды списали деньги.", "koi8_r"),
])
@pytest.mark.no_db  # runs no SQL: left out of the PostgreSQL run
def test_text_mislabelled_as_utf8_is_detected(text: str, codec: str) -> None:
    raw = (b"From: a@example.org\r\nSubject: x\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
           + text.encode(codec) + b"\r\n")
    pm = parse_message(raw)
    assert pm.body_text == text
    assert any(n.startswith("charset: detected") for n in pm.notes)


@pytest.mark.no_db  # runs no SQL: left out of the PostgreSQL run
def test_declared_charset_wins_and_western_fallback_is_cp1252() -> None:
    assert decode("Gebühr für März".encode("cp1252"), None) == "Gebühr für März"
    assert decode("Le prélèvement a été refusé".encode("latin-1"), "iso-8859-1") == "Le prélèvement a été refusé"
    assert decode(CHINESE.encode("gb18030"), "gb2312") == CHINESE


@pytest.mark.no_db  # runs no SQL: left out of the PostgreSQL run
def test_undeclared_8bit_header_uses_the_charset_the_message_declares_elsewhere() -> None:
    raw = (b"From: " + "张三".encode("gbk") + b" <zhang@example.cn>\r\nTo: complaints@example.com\r\n"
           b"Subject: " + "发票有问题".encode("gbk") + b"\r\nMIME-Version: 1.0\r\n"
           b"Content-Type: text/plain; charset=gb2312\r\n\r\n" + CHINESE.encode("gbk") + b"\r\n")
    pm = parse_message(raw)
    assert (pm.sender_name, pm.subject, pm.body_text) == ("张三", "发票有问题", CHINESE)


@pytest.mark.no_db  # runs no SQL: left out of the PostgreSQL run
def test_iso_2022_jp_body_and_subject() -> None:
    subject = "二重請求について"
    import base64

    encoded = base64.b64encode(subject.encode("iso2022_jp")).decode()
    for declared in (b"; charset=ISO-2022-JP", b"; charset=us-ascii", b""):
        raw = (f"From: a@example.org\r\nSubject: =?ISO-2022-JP?B?{encoded}?=\r\n".encode()
               + b"Content-Type: text/plain" + declared + b"\r\n\r\n" + JAPANESE.encode("iso2022_jp") + b"\r\n")
        pm = parse_message(raw)
        assert pm.subject == subject
        assert pm.body_text == JAPANESE
    # NEC/IBM extensions (circled digits) are beyond plain ISO-2022-JP; the extended variants decode them.
    raw = (b"From: a@example.org\r\nSubject: x\r\nContent-Type: text/plain; charset=iso-2022-jp\r\n\r\n"
           + "半角ｶﾀｶﾅ".encode("iso2022_jp_ext") + b"\r\n")
    assert parse_message(raw).body_text == "半角ｶﾀｶﾅ"


# ---------------------------------------------------------------- Unicode separators (issue 18)

SEPARATORS = ["\u2028", "\u2029", "\u0085", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]


@pytest.mark.parametrize("sep", SEPARATORS)
def test_separators_in_smtp_subject_and_name_are_stored_and_acknowledged(
    sep: str, monkeypatch: pytest.MonkeyPatch, intake_smtp: tuple[str, int], smtp_sink: Any, run_mail_jobs: Any
) -> None:
    from casemgr.runtime import rebuild

    monkeypatch.setenv("CASEMGR_INTAKE_ACK", "true")
    rebuild()
    raw = (f"From: Ann{sep}Lee <ann@example.org>\r\nTo: complaints@example.com\r\nSubject: refund{sep}now\r\n"
           f"Message-ID: <sep@example.org>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline one{sep}line two\r\n"
           ).encode()
    with smtplib.SMTP(*intake_smtp, timeout=30) as smtp:
        assert smtp.sendmail("ann@example.org", ["complaints@example.com"], raw) == {}  # 250, not 451
    with read_session() as s:
        stored = s.execute(select(Message).where(Message.direction == "inbound")).scalar_one()
        case = s.get(Case, stored.case_id)
    assert stored.raw == raw
    assert case.subject == "refund now" and stored.subject == "refund now"
    assert run_mail_jobs() == 1
    assert len(smtp_sink.messages) == 1
    sent = message_from_bytes(smtp_sink.messages[0]["data"], policy=policy.default)
    # The acknowledgement's subject is the case reference, never the sender's text (issue 18), and one line.
    assert str(sent["Subject"]) == f"We received your message: case {case.reference} [{case.reference}]"
    assert sep not in sent.as_string()


@pytest.mark.parametrize("sep", ["\u2028", "\u2029", "\u0085"])
def test_separators_in_form_and_api_fields(sep: str, client: Any, api_key: Any) -> None:
    import re

    page = client.get("/submit/complaint")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    res = client.post("/submit/complaint", data={
        "name": f"Ann{sep}Lee", "email": "ann@example.org", "subject": f"refund{sep}now",
        "description": f"Charged twice.{sep}Please refund.", "csrf_token": token})
    assert res.status_code == 200, res.text[:500]
    res = client.post("/api/intake", headers={"X-API-Key": api_key("agent")}, json={
        "subject": f"fees{sep}again", "body": "Fees charged twice.", "sender": {"name": f"Bo{sep}Ek",
                                                                                "email": "bo@example.org"}})
    assert res.status_code == 201, res.text
    with read_session() as s:
        cases = {c.subject: c for c in s.execute(select(Case)).scalars()}
        party = s.get(Party, cases["fees again"].party_id)
    assert set(cases) == {"refund now", "fees again"}
    assert party.name == "Bo Ek"
    assert "Charged twice.\nPlease refund." in cases["refund now"].description
