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


def make_case(subject: str = "Card charged twice", description: str = "I was charged twice for one order.",
              case_type: str = "complaint") -> int:
    from casemgr.cases import service
    from casemgr.cases.schemas import CaseCreate, PartyIn
    from casemgr.db import write_session

    with write_session() as s:
        fields = {"counterparty": "ACME"} if case_type == "contract" else {}
        c = service.create_case(s, CaseCreate(case_type=case_type, subject=subject, description=description,
                                              party=PartyIn(name="Pat Doe", email="pat@example.com"), fields=fields),
                                actor="user:test")
        return int(c.id or 0)
