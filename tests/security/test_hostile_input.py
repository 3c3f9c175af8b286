"""Hostile input through every intake channel: nothing reaches a 500, nothing is lost (every message is stored on
a case or held raw in quarantine with its reason, or the sender is told it was refused), nothing escapes."""

from __future__ import annotations

import base64
import json
import os
import smtplib
from pathlib import Path
from typing import Any

import pytest
from reliability.helpers import assert_consistent, raw_mail, send_mail
from sqlalchemy import func, select

from casemgr.cases.models import Case
from casemgr.config import get_settings
from casemgr.db import read_session
from casemgr.intake.models import Attachment, Message, QuarantinedMessage

from .hostile import SAFE_NAME, headers, kept, many_parts, nested_mime, with_attachment, zip_bomb

REPORT: dict[str, tuple[int, int]] = {}  # class -> (sent, kept) for the closing note


def _report(name: str, sent: int, stored: int) -> None:
    REPORT[name] = (sent, stored)
    print(f"hostile[{name}]: sent={sent} kept={stored}")


def _json_error(r: Any, status: int) -> None:
    assert r.status_code == status, (r.status_code, r.text[:300])
    assert r.headers["content-type"].startswith("application/json") and r.json()["detail"], r.text[:300]


# ---------------------------------------------------------------- size


def test_oversized_bodies_and_attachments_are_refused_with_a_reason(smtp_server: Any, api: Any, anon: Any,
                                                                    limits: int) -> None:
    big = "x" * (limits * 2)
    # API: a body over the limit is refused before it is read (Content-Length) and when streamed without one.
    _json_error(api.post("/api/intake", json={"subject": "big", "body": big * 3}), 413)
    _json_error(api.post("/api/cases", json={"case_type": "complaint", "subject": "big", "description": big * 3}),
                413)

    def chunks() -> Any:
        yield b'{"subject": "chunked", "body": "'
        for _ in range(30):
            yield b"y" * 100_000
        yield b'"}'

    _json_error(api.post("/api/intake", content=chunks(), headers={"content-type": "application/json"}), 413)
    # API: a body field over its own limit, and attachments over the message limit once decoded.
    _json_error(api.post("/api/intake", json={"subject": "long", "body": "z" * 100_001}), 422)
    att = base64.b64encode(b"\x01" * (limits + 10)).decode()
    _json_error(api.post("/api/intake", json={"subject": "att", "attachments": [
        {"filename": "big.bin", "content_base64": att}]}), 413)
    _json_error(api.post("/api/intake", json={"subject": "bad b64", "attachments": [
        {"filename": "x.bin", "content_base64": "!!not base64!!"}]}), 422)
    # SMTP: over the size limit -> 552 before anything is stored; the sending server keeps and bounces it.
    with pytest.raises(smtplib.SMTPException) as err:
        send_mail(smtp_server, raw_mail("<huge@example.org>", body=big))
    assert getattr(err.value, "smtp_code", 552) == 552 or isinstance(err.value, smtplib.SMTPServerDisconnected)
    # Import (.eml): over the limit -> quarantined with the reason (the raw source stays with the importer).
    from casemgr.intake.service import ingest_raw

    res = ingest_raw(raw_mail("<huge-import@example.org>", body=big), channel="import", source="big.eml")
    assert res.status == "quarantined" and "over the limit" in (res.reason or "")
    # Form: an attachment over the limit -> a friendly page, no case.
    import re

    page = anon.get("/submit/complaint")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    r = anon.post("/submit/complaint", data={"name": "A", "email": "a@example.org", "subject": "s",
                                             "description": "a long enough description", "csrf_token": token},
                  files={"attachments": ("big.bin", b"\0" * (limits + 10), "application/octet-stream")})
    assert r.status_code in (413, 422) and "too large" in r.text.lower(), r.status_code
    with read_session() as s:
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == 0
    _report("oversized", 1, kept())  # the imported one is held in quarantine; the rest were refused to the sender
    assert kept() == 1


# ---------------------------------------------------------------- archives and MIME structure


def test_zip_bombs_are_stored_as_is_and_never_expanded(smtp_server: Any, fresh_db: Path) -> None:
    bombs = {"bomb.zip": zip_bomb(), "nested.zip": zip_bomb(nested=True)}
    sent = 0
    for i, (name, data) in enumerate(bombs.items()):
        assert len(data) < 300_000
        assert send_mail(smtp_server, with_attachment(f"<zip-{i}@example.org>", f'filename="{name}"', data,
                                                      "application/zip")) == {}
        sent += 1
    with read_session() as s:
        atts = {a.filename: a for a in s.execute(select(Attachment)).scalars()}
    assert set(atts) == set(bombs)
    for name, data in bombs.items():
        assert atts[name].size == len(data)
        stored = (get_settings().resolved_data_dir / atts[name].storage_path).read_bytes()
        assert stored == data  # byte for byte what arrived: nothing was unpacked
    total = sum(p.stat().st_size for p in fresh_db.rglob("*") if p.is_file() and "attach" in str(p))
    assert total < 1_000_000, f"attachment storage grew to {total} bytes: something expanded an archive"
    assert kept() == sent
    _report("zip bomb", sent, kept())
    assert_consistent()


def test_deep_and_wide_mime_is_quarantined_with_a_reason(smtp_server: Any) -> None:
    sent = 0
    for i, raw in enumerate([nested_mime("<deep-1@example.org>", 60), nested_mime("<deep-2@example.org>", 500),
                             many_parts("<wide@example.org>", 2000)]):
        assert send_mail(smtp_server, raw) == {}, i  # accepted: the raw bytes are kept, nothing is lost
        sent += 1
    with read_session() as s:
        held = list(s.execute(select(QuarantinedMessage)).scalars())
    assert len(held) == sent and all(q.raw for q in held)
    assert all(("depth" in q.reason or "parts" in q.reason or "nest" in q.reason) for q in held), \
        [q.reason for q in held]
    assert kept() == sent
    _report("deep/wide MIME", sent, kept())


# ---------------------------------------------------------------- header injection


def test_header_injection_in_reply_subjects_never_reaches_the_wire(smtp_server: Any, api: Any, smtp_sink: Any,
                                                                   run_jobs: Any) -> None:
    from casemgr.db import write_session
    from casemgr.intake import outbound
    from casemgr.jobs.models import Job

    encoded = "=?utf-8?b?" + base64.b64encode(b"Refund\r\nBcc: victim@evil.example\r\nX-Injected: 1").decode() + "?="
    assert send_mail(smtp_server, raw_mail("<inj-1@example.org>", subject=encoded)) == {}
    r = api.post("/api/intake", json={"subject": "Hi\r\nBcc: victim@evil.example\nX-Injected: 2",
                                      "body": "hello", "sender": {"email": "ann@example.org",
                                                                  "name": "Ann\r\nBcc: x@evil.example"}})
    assert r.status_code == 201, r.text
    with read_session() as s:
        cases = list(s.execute(select(Case)).scalars())
    assert len(cases) == 2 == kept()
    with write_session() as s:
        for c in cases:
            assert "\r" not in c.subject and "\n" not in c.subject
            outbound.send_reply(s, c.id, "We are on it.\r\nBcc: victim@evil.example", actor="user:agent")
    run_jobs()  # as `casemgr worker --once`: the replies, and the AI enrichment intake queued
    with read_session() as s:
        sends = list(s.execute(select(Job.status).where(Job.kind == "mail.send")).scalars())
    assert sends and set(sends) == {"done"}
    from email import message_from_bytes

    assert smtp_sink.messages and all(m["to"] == ["ann@example.org"] for m in smtp_sink.messages)
    for m in smtp_sink.messages:
        em = message_from_bytes(m["data"])
        assert em["Bcc"] is None and em["X-Injected"] is None, em.as_string()[:500]
        assert "\n" not in str(em["Subject"]).strip()
    _report("header injection", 2, kept())


# ---------------------------------------------------------------- file names


TRAVERSAL = [
    'filename="../../../../tmp/casemgr-evil.sh"',
    "filename*=UTF-8''..%2F..%2F..%2Fetc%2Fcasemgr-passwd",
    'filename="..\\\\..\\\\Windows\\\\System32\\\\casemgr-evil.exe"',
    'filename="/etc/casemgr-cron"',
    'filename="evil\\x00.pdf"',
    'filename="%2e%2e%2fcasemgr-enc.txt"',
]


def test_path_traversal_in_attachment_names_is_neutralised(smtp_server: Any, api: Any, anon: Any,
                                                           fresh_db: Path) -> None:
    sent = 0
    for i, param in enumerate(TRAVERSAL):
        assert send_mail(smtp_server, with_attachment(f"<trav-{i}@example.org>", param, b"#!/bin/sh\necho pwned\n",
                                                      "application/x-sh")) == {}
        sent += 1
    for i, name in enumerate(["../../../tmp/casemgr-api.sh", "..\\..\\casemgr-api.exe", "/abs/casemgr-api"]):
        r = api.post("/api/intake", json={"subject": f"trav api {i}", "attachments": [
            {"filename": name, "content_base64": base64.b64encode(b"data").decode()}]})
        assert r.status_code == 201, r.text
        sent += 1
    assert kept() == sent
    with read_session() as s:
        atts = list(s.execute(select(Attachment)).scalars())
    assert len(atts) == sent
    root = (get_settings().resolved_data_dir).resolve()
    for a in atts:
        assert SAFE_NAME.match(a.filename) and ".." not in a.filename.split(".")[0:1] and not a.filename.startswith(
            "."), a.filename
        assert (root / a.storage_path).resolve().is_relative_to(root), a.storage_path
    for p in ("/tmp/casemgr-evil.sh", "/etc/casemgr-passwd", "/etc/casemgr-cron", "/tmp/casemgr-api.sh"):
        assert not os.path.exists(p), p
    # Downloads name the sanitised file and never let the name break the header.
    agent = api
    with read_session() as s:
        a = atts[0]
        case_id = s.get(Message, a.message_id).case_id  # type: ignore[union-attr]
    r = agent.get(f"/cases/{case_id}/attachments/{a.id}")
    assert r.status_code == 200 and r.headers["content-disposition"].startswith("attachment")
    assert r.headers.get("x-content-type-options") == "nosniff"
    _report("path traversal", sent, kept())
    assert_consistent()


# ---------------------------------------------------------------- encodings and control characters


def test_invalid_utf8_and_control_characters_are_stored_clean(smtp_server: Any, api: Any, anon: Any) -> None:
    bad_raws = [
        headers("<utf-1@example.org>", "Bad \xff\xfe subject").encode("latin-1") + b"\r\nBody \xc3\x28 \xff end\r\n",
        headers("<utf-2@example.org>", "Ctl \x1b[31mred\x1b[0m \x07 bell").encode() + b"\r\nNUL\x00in body\x0b\x0c\r\n",
        (headers("<utf-3@example.org>", "=?utf-8?q?=FF=FE=00nul?=") +
         "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: base64\r\n\r\n").encode()
        + base64.b64encode(b"\xff\xfe\xfd broken \xed\xa0\x80 surrogate \x00") + b"\r\n",
        headers("<utf-4@example.org>", "RTL \u202egnp.exe and zero\u200bwidth").encode("utf-8")
        + b"\r\nContent with \xe2\x80\xae override\r\n",
        headers("<utf-5@example.org>", "charset lie").encode() + b"Content-Type: text/plain; charset=x-no-such\r\n"
        + b"\r\n\x80\x81\x82 body\r\n",
    ]
    sent = 0
    for raw in bad_raws:
        assert send_mail(smtp_server, raw) == {}
        sent += 1
    for i, text in enumerate(["NUL \x00 here", "ESC \x1b[2J clear", "BOM \ufeff", "lone \ud800 surrogate",
                              "CRLF\r\nBcc: x@evil.example", "DEL \x7f and C1 \x85\x9b"]):
        body = json.dumps({"subject": f"ctl {i} {text}", "body": text, "sender": {"name": text}})  # \uXXXX escapes
        r = api.post("/api/intake", content=body.encode(), headers={"content-type": "application/json"})
        if "\ud800" in text:  # a lone surrogate is not Unicode text: refused with the field named
            assert r.status_code == 422 and "subject" in r.json()["detail"], r.text
            continue
        assert r.status_code == 201, (i, r.status_code, r.text)
        sent += 1
    r = api.post("/api/intake", content=b'{"subject": "raw \xff\xfe bytes"}', headers={"content-type":
                                                                                     "application/json"})
    assert r.status_code in (400, 422) and r.json()["detail"], r.text  # not JSON text at all: refused, with a reason
    assert kept() == sent
    with read_session() as s:
        for c in s.execute(select(Case)).scalars():
            for field in (c.subject, c.description):
                assert "\x00" not in field and "\r" not in c.subject and "\x1b" not in c.subject, repr(field[:80])
        for m in s.execute(select(Message)).scalars():
            assert "\x00" not in (m.body_text or "") and "\x00" not in (m.subject or "")
    for c in api.get("/api/cases").json()["items"]:
        assert api.get(f"/cases/{c['id']}", headers={"Accept": "text/html"}).status_code == 200
    _report("invalid UTF-8 / control chars", sent, kept())
    assert_consistent()


# ---------------------------------------------------------------- SQL metacharacters in filters

SQL = ["' OR '1'='1", "1; DROP TABLE cases;--", "%", "_", "\\", "\" OR 1=1 --", "') UNION SELECT * FROM users--",
       "%' OR 1=1 --", "\x00", "*"]
API_FILTERS = ["type", "stage", "queue", "assignee", "priority", "status", "category", "sla_state", "q", "cursor"]
PAGE_FILTERS = ["view", "queue", "type", "stage", "priority", "sla_state", "assignee", "category", "status", "q",
                "cursor"]


def test_sql_metacharacters_in_every_filter_match_nothing_and_break_nothing(api: Any, app: Any,
                                                                            make_user: Any) -> None:
    from fastapi.testclient import TestClient
    from web._helpers import HTML, login

    for i in range(3):
        assert api.post("/api/cases", json={"case_type": "complaint", "subject": f"plain case {i}"}).status_code == 201
    name, pw = make_user("agent")
    with TestClient(app, raise_server_exceptions=False) as browser:
        login(browser, name, pw)
        requests = 0
        for payload in SQL:
            for f in API_FILTERS:
                r = api.get("/api/cases", params={f: payload, "status": "any"} if f != "status" else {f: payload})
                requests += 1
                assert r.status_code in (200, 400, 422), (f, payload, r.status_code, r.text[:200])
                if r.status_code == 200:
                    assert r.json()["items"] == [], (f, payload)  # a literal value no case has
                else:
                    assert r.json()["detail"]
            for f in PAGE_FILTERS:
                r = browser.get("/queue", params={f: payload}, headers=HTML)
                requests += 1
                assert r.status_code in (200, 400, 422), (f, payload, r.status_code)
                # NUL is stripped from input, leaving an empty (no) filter; "view"/"status" fall back to defaults.
                assert "plain case" not in r.text or f in ("view", "status") or payload == "\x00", (f, payload)
    assert requests == len(SQL) * (len(API_FILTERS) + len(PAGE_FILTERS))
    # Nothing was dropped or widened: all three cases are still there and a normal filter still works.
    assert len(api.get("/api/cases").json()["items"]) == 3
    assert len(api.get("/api/cases", params={"q": "plain case 1"}).json()["items"]) == 1
    with read_session() as s:
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == 3
