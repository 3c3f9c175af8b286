"""Public form (no login, CSRF, rate limit, attachments, friendly errors) and POST /api/intake (API key)."""

from __future__ import annotations

import base64
import re
from typing import Any

import pytest
from sqlalchemy import func, select

from casemgr.cases.models import Case
from casemgr.db import read_session
from casemgr.intake.models import Attachment, Message
from casemgr.jobs.models import Job
from casemgr.runtime import rebuild
from casemgr.web import csrf

GOOD = {"name": "Ann Lee", "email": "ann@example.org", "subject": "Charged twice",
        "description": "My card was charged twice for one purchase.", "category": "credit_card", "amount": "120.50"}


def token(client: Any, kind: str = "complaint") -> str:
    page = client.get(f"/submit/{kind}")
    assert page.status_code == 200
    m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert m
    return m.group(1)


def cases() -> int:
    with read_session() as s:
        return int(s.execute(select(func.count()).select_from(Case)).scalar_one())


def test_complaint_form_creates_case_with_attachment_and_ack(client: Any) -> None:
    t = token(client)
    files = [("attachments", ("../../statement.pdf", b"%PDF-1.4 statement", "application/pdf"))]
    res = client.post("/submit/complaint", data={**GOOD, "csrf_token": t}, files=files)
    assert res.status_code == 200, res.text
    ref = re.search(r'id="case-reference">([^<]+)<', res.text)
    assert ref and ref.group(1).startswith("CMP-")
    with read_session() as s:
        case = s.execute(select(Case)).scalar_one()
        assert case.reference == ref.group(1) and case.channel == "form"
        assert case.fields.get("category") == "credit_card" and case.amount == 120.5
        att = s.execute(select(Attachment)).scalar_one()
        assert att.filename == "statement.pdf" and att.size == len(b"%PDF-1.4 statement")
        assert s.execute(select(Job).where(Job.kind == "mail.send")).scalar_one()  # acknowledgement queued
        msg = s.execute(select(Message).where(Message.direction == "inbound")).scalar_one()
        assert msg.channel == "form" and msg.sender == "ann@example.org"


def test_contract_request_form(client: Any) -> None:
    t = token(client, "contract-request")
    data = {**GOOD, "organisation": "Acme Ltd", "contract_kind": "supply", "csrf_token": t}
    data.pop("category")
    res = client.post("/submit/contract-request", data=data)
    assert res.status_code == 200, res.text
    with read_session() as s:
        case = s.execute(select(Case)).scalar_one()
    assert case.case_type == "contract" and case.fields["counterparty"] == "Acme Ltd"


def test_form_without_or_with_forged_csrf_token_is_refused(client: Any) -> None:
    res = client.post("/submit/complaint", data=GOOD)
    assert res.status_code == 403 and "expired" in res.text
    token(client)
    res = client.post("/submit/complaint", data={**GOOD, "csrf_token": "forged"})
    assert res.status_code == 403
    t = token(client)
    client.cookies.clear()
    client.cookies.set(csrf.FORM_COOKIE, "tampered")
    res = client.post("/submit/complaint", data={**GOOD, "csrf_token": t})
    assert res.status_code == 403
    assert cases() == 0


def test_friendly_validation_errors_keep_input_and_escape_it(client: Any) -> None:
    t = token(client)
    bad = {"name": "<script>alert(1)</script>", "email": "not-an-email", "subject": "", "description": "short",
           "amount": "lots", "csrf_token": t}
    res = client.post("/submit/complaint", data=bad)
    assert res.status_code == 422
    assert "Please give an email address" in res.text and "Please add a short subject" in res.text
    assert "Please give the amount as a number" in res.text
    assert "<script>alert(1)</script>" not in res.text and "&lt;script&gt;" in res.text
    assert cases() == 0


def test_rate_limit_per_ip(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CASEMGR_FORM_RATE_PER_MINUTE", "2")
    rebuild()
    codes = [client.post("/submit/complaint", data={**GOOD, "csrf_token": token(client)}).status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]
    assert cases() == 2


def test_rate_limit_holds_across_app_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two app instances (as with `serve --workers 2` or two hosts) share one count per address."""
    from fastapi.testclient import TestClient

    from casemgr.web.app import create_app

    monkeypatch.setenv("CASEMGR_FORM_RATE_PER_MINUTE", "3")
    rebuild()
    with TestClient(create_app()) as one, TestClient(create_app()) as two:
        codes = [c.post("/submit/complaint", data={**GOOD, "subject": f"Charged twice {i}", "csrf_token": token(c)}
                        ).status_code for i, c in enumerate([one, two, one, two, one])]
    assert codes == [200, 200, 200, 429, 429]
    assert cases() == 3


def test_form_shows_retry_message_when_database_is_down(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy.exc import OperationalError

    from casemgr.intake import routes

    async def down(*a: Any, **k: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    def counter_down(*a: Any, **k: Any) -> Any:
        raise OperationalError("INSERT", {}, Exception("database is locked"))

    monkeypatch.setattr(routes, "ingest_submission_async", down)
    res = client.post("/submit/complaint", data={**GOOD, "csrf_token": token(client)})
    assert res.status_code == 503 and "please try again" in res.text.lower()
    assert 'value="Charged twice"' in res.text  # nothing the customer typed is lost on screen either
    # The rate limit counts in the database too: when that write fails, the same page, not a 500.
    monkeypatch.setattr(routes.ratelimit, "allow", counter_down)
    res = client.post("/submit/complaint", data={**GOOD, "csrf_token": token(client)})
    assert res.status_code == 503 and 'value="Charged twice"' in res.text


def test_unknown_form_kind_is_404(client: Any) -> None:
    assert client.get("/submit/other").status_code == 404


# ---------------------------------------------------------------- API


@pytest.fixture
def intake_key() -> str:
    """A key for another system: no user, scoped to intake only (`casemgr users api-key crm --scope intake`)."""
    from casemgr.db import write_session
    from casemgr.users import service as users

    with write_session() as s:
        _, secret = users.create_api_key(s, "crm", None, ["intake"])
    return secret


def test_api_intake_needs_key_and_permission(client: Any, api_key: Any, intake_key: str) -> None:
    body = {"subject": "From CRM", "body": "Customer called about fees."}
    assert client.post("/api/intake", json=body).status_code == 401
    assert client.post("/api/intake", json=body, headers={"X-API-Key": api_key("reviewer")}).status_code == 403
    res = client.post("/api/intake", json=body, headers={"X-API-Key": intake_key})
    assert res.status_code == 201 and res.json()["status"] == "case"
    assert client.post("/api/intake", json=body, headers={"X-API-Key": api_key("agent")}).status_code == 201
    with read_session() as s:
        actors = {m.meta["source"] for m in s.execute(select(Message)).scalars()}
    assert actors == {"api:apikey:crm", "api:apikey:test-2"}


def test_api_intake_dedupes_external_id_and_stores_attachments(client: Any, intake_key: str) -> None:
    key = {"X-API-Key": intake_key}
    body = {"case_type": "contract", "subject": "NDA with Foo", "body": "Please draft an NDA.",
            "sender": {"name": "Sam", "email": "sam@foo.example", "organisation": "Foo"},
            "external_id": "crm-42", "fields": {"contract_kind": "nda"},
            "attachments": [{"filename": "..\\draft.docx", "content_type": "application/octet-stream",
                             "content_base64": base64.b64encode(b"docx bytes").decode()}]}
    first = client.post("/api/intake", json=body, headers=key)
    assert first.status_code == 201, first.text
    out = first.json()
    assert out["reference"].startswith("CTR-")
    again = client.post("/api/intake", json=body, headers=key)
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    assert again.json()["case_id"] == out["case_id"]
    assert cases() == 1
    with read_session() as s:
        assert s.execute(select(Attachment)).scalar_one().filename == "draft.docx"
        assert s.execute(select(Job).where(Job.kind == "mail.send")).first() is None  # API callers ack themselves


@pytest.mark.parametrize("body,field", [
    ({"subject": ""}, "subject"),
    ({"subject": "x", "case_type": "other"}, "case_type"),
    ({"subject": "x", "fields": {"nope": 1}}, "unknown field"),
    ({"subject": "x", "sender": {"email": "bad"}}, "sender.email"),
    ({"subject": "x", "attachments": [{"filename": "a", "content_base64": "***"}]}, "base64"),
    ({"subject": "x'; DROP TABLE cases; --", "body": "<img src=x onerror=alert(1)>"}, None),
])
def test_api_intake_validation(client: Any, intake_key: str, body: dict[str, Any], field: str | None) -> None:
    res = client.post("/api/intake", json=body, headers={"X-API-Key": intake_key})
    if field is None:
        assert res.status_code == 201  # stored verbatim as data, nothing executed
        return
    assert res.status_code == 422 and field in res.text
    assert res.json()["detail"]
