"""Helpers for web UI tests: log in through the real form and keep the CSRF token of the session."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

HTML = {"Accept": "text/html"}


def login_csrf(client: TestClient) -> str:
    r = client.get("/login", headers=HTML)
    m = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
    assert m, r.text
    return m.group(1)


def login(client: TestClient, username: str, password: str) -> str:
    """Logs in and returns the session's CSRF token."""
    token = login_csrf(client)
    r = client.post("/login", data={"username": username, "password": password, "csrf_token": token},
                    headers=HTML, follow_redirects=False)
    assert r.status_code == 303, r.text
    page = client.get("/queue", headers=HTML)
    m = re.search(r'data-csrf="([^"]+)"', page.text)
    assert m, page.text[:500]
    return m.group(1)


def add_suggestion(case_id: int, kind: str = "draft_reply", value: dict | None = None,  # type: ignore[type-arg]
                   rationale: str = "The customer asked a direct question.") -> int:
    """Record an AI output through the governance choke point; with the baseline policy this is a suggestion."""
    from casemgr.cases.service import get_case
    from casemgr.db import write_session
    from casemgr.governance.decide import AIOutput
    from casemgr.governance.service import record_decision

    with write_session() as s:
        case = get_case(s, case_id)
        row = record_decision(s, case, AIOutput(kind=kind, value=value or {"text": "We are refunding you."},
                                                confidence=0.81, model_version="test-model", provider="local",
                                                rationale=rationale))
        assert row.outcome == "suggested", (row.outcome, row.reason)
        return int(row.id or 0)


def add_sampled(case_id: int, priority: str = "urgent") -> int:
    """An applied set_priority decision picked for review (sample rate 1): what a reviewer audits (issue 21)."""
    from casemgr.cases.service import get_case
    from casemgr.db import write_session
    from casemgr.governance.decide import AIOutput
    from casemgr.governance.service import record_decision
    from tests.governance.util import policy

    sampled = policy(lambda d: d["review"].update(sample_rate=1.0))
    with write_session() as s:
        row = record_decision(s, get_case(s, case_id), AIOutput(kind="set_priority", value={"priority": priority},
                                                                confidence=0.95, model_version="test-model",
                                                                provider="local", rationale="Customer is angry."),
                              policy=sampled)
        assert row.outcome == "applied" and row.review_status == "sampled", (row.outcome, row.reason)
        return int(row.id or 0)


def add_inbound_message(case_id: int, body: str, subject: str = "Hello", sender: str = "pat@example.com",
                        attachment_name: str | None = None) -> int:
    import hashlib

    from casemgr.config import get_settings
    from casemgr.db import write_session
    from casemgr.intake.models import Attachment, Message

    with write_session() as s:
        m = Message(case_id=case_id, direction="inbound", channel="email", sender=sender, subject=subject,
                    body_text=body, message_id=f"<{hashlib.sha1(body.encode()).hexdigest()}@example.com>")
        s.add(m)
        s.flush()
        if attachment_name:
            data = b"<html><script>alert(1)</script></html>"
            d = get_settings().resolved_data_dir / "att"
            d.mkdir(parents=True, exist_ok=True)
            (d / "a1.bin").write_bytes(data)
            s.add(Attachment(message_id=m.id or 0, filename=attachment_name, content_type="text/html", size=len(data),
                             sha256=hashlib.sha256(data).hexdigest(), storage_path=str(d / "a1.bin")))
        return int(m.id or 0)
