"""Script payloads in every rendered field, arriving through the real channels (SMTP, API, notes, quarantine),
render inert on every page that shows them. (tests/web/test_xss.py covers the same fields written directly.)"""

from __future__ import annotations

import base64
from typing import Any

from fastapi.testclient import TestClient
from reliability.helpers import assert_consistent, send_mail
from sqlalchemy import select
from web.test_xss import EVIL, PAYLOADS, Audit, assert_inert

from casemgr.cases.models import Case
from casemgr.db import read_session

from .hostile import headers, kept, with_attachment

HTML = {"Accept": "text/html"}


def _inert(html: str, where: str) -> None:
    a = Audit()
    a.feed(html)
    assert all(s.get("src") in ("/static/htmx.min.js", "/static/app.js") for s in a.scripts), (where, a.scripts)
    assert a.handlers == [] and a.js_urls == [] and "svg" not in a.tags, where


def test_payloads_from_every_channel_render_inert(smtp_server: Any, app: Any, api_key: Any) -> None:
    name = PAYLOADS[1].replace('"', "'")
    sent = 0
    raw = (headers("<xss-1@example.org>", PAYLOADS[0] + " " + PAYLOADS[3], from_=f'"{name}" <x@example.org>')
           + 'Content-Type: multipart/alternative; boundary="A"\r\n\r\n'
           + f"--A\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n{EVIL}\r\n"
           + f"--A\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<html><body>{EVIL}</body></html>\r\n--A--\r\n")
    assert send_mail(smtp_server, raw.encode()) == {}
    att = with_attachment("<xss-2@example.org>", 'filename="<img src=x onerror=alert(9)>.html"',
                          b"<script>alert(1)</script>", "text/html", subject=PAYLOADS[2])
    assert send_mail(smtp_server, att) == {}
    sent += 2
    # Unparseable hostile bytes go to quarantine; the admin page shows them inert too.
    assert send_mail(smtp_server, b"From: " + PAYLOADS[0].encode() + b"\r\n\r\n" + EVIL.encode() + b"\r\n") == {}
    sent += 1
    key = api_key("agent", "lead", "reviewer", "admin")
    with TestClient(app, headers={"X-API-Key": key}) as c:
        r = c.post("/api/intake", json={"subject": EVIL[:400], "body": EVIL, "sender": {
            "name": PAYLOADS[4][:300], "email": "y@example.org", "organisation": PAYLOADS[1]},
            "attachments": [{"filename": PAYLOADS[0] + ".svg", "content_type": "image/svg+xml",
                             "content_base64": base64.b64encode(b"<svg onload=alert(1)>").decode()}]})
        assert r.status_code == 201, r.text
        sent += 1
        with read_session() as s:
            ids = list(s.execute(select(Case.id)).scalars())
        for cid in ids:
            assert c.post(f"/api/cases/{cid}/notes", json={"body": EVIL}).status_code == 201
        for cid in ids:
            page = c.get(f"/cases/{cid}", headers=HTML)
            assert page.status_code == 200
            assert_inert(page.text, f"/cases/{cid}")
        for path in ("/queue", f"/queue?q={PAYLOADS[0]}", "/review", "/dashboard", "/admin/quarantine"):
            page = c.get(path, headers=HTML)
            assert page.status_code == 200, (path, page.status_code)
            _inert(page.text, path)
        # Attachments are downloads, never rendered inline, whatever their claimed type.
        from casemgr.intake.models import Attachment

        with read_session() as s:
            for a in s.execute(select(Attachment)).scalars():
                from casemgr.intake.models import Message

                cid = s.get(Message, a.message_id).case_id  # type: ignore[union-attr]
                d = c.get(f"/cases/{cid}/attachments/{a.id}")
                assert d.status_code == 200 and d.headers["content-disposition"].startswith("attachment")
                assert d.headers["x-content-type-options"] == "nosniff"
                assert "\n" not in d.headers["content-disposition"]
    assert kept() == sent
    assert_consistent()
    print(f"hostile[script payloads]: sent={sent} kept={kept()}")
