"""One CSRF mechanism (casemgr.web.csrf): the middleware checks every state-changing browser request, against the
session's token when there is a live session and against the signed pre-session cookie otherwise."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import time_machine
from fastapi.testclient import TestClient
from itsdangerous import URLSafeTimedSerializer

from casemgr.clock import now
from casemgr.web import csrf
from casemgr.web.sessions import SESSION_COOKIE

from ._helpers import HTML, login

PACKAGE = Path(__file__).resolve().parents[2] / "casemgr"
FORM = {"name": "Ann Lee", "email": "ann@example.org", "subject": "Charged twice",
        "description": "My card was charged twice for one purchase.", "category": "credit_card"}


def _form_token(client: TestClient, path: str) -> str:
    page = client.get(path)
    m = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert page.status_code == 200 and m
    return m.group(1)


def test_login_and_public_form_share_one_pre_session_token(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        token = _form_token(c, "/login")
        assert _form_token(c, "/submit/complaint") == token  # a second tab does not invalidate the first
        r = c.post("/submit/complaint", data={**FORM, "csrf_token": token})
        assert r.status_code == 200, r.text


def test_a_cookie_signed_with_another_key_is_refused(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        forged = URLSafeTimedSerializer("not-our-key", salt="casemgr-form-csrf").dumps("chosen-token")
        c.cookies.set(csrf.FORM_COOKIE, forged)
        r = c.post("/submit/complaint", data={**FORM, "csrf_token": "chosen-token"})
        assert r.status_code == 403 and r.json()["error"] == "csrf_failed"


def test_a_pre_session_token_expires(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        token = _form_token(c, "/submit/complaint")
        with time_machine.travel(now() + timedelta(seconds=csrf.FORM_TOKEN_MAX_AGE_S + 60)):
            r = c.post("/submit/complaint", data={**FORM, "csrf_token": token}, headers=HTML)
        assert r.status_code == 403 and 'data-error="csrf_failed"' in r.text and "expired" in r.text


def test_a_logged_in_browser_sends_the_session_token_and_a_stale_session_needs_a_fresh_page(app, make_user) -> None:  # type: ignore[no-untyped-def]
    name, pw = make_user("agent")
    with TestClient(app) as c:
        session_token = login(c, name, pw)
        old_cookie = c.cookies.get(SESSION_COOKIE)
        r = c.post("/logout", data={"csrf_token": "not-the-token"}, follow_redirects=False)
        assert r.status_code == 403
        r = c.post("/logout", headers={"X-CSRF-Token": session_token}, follow_redirects=False)
        assert r.status_code == 303
        c.cookies.clear()
        c.cookies.set(SESSION_COOKIE, old_cookie)  # the ended session's cookie, and no pre-session token
        r = c.post("/cases/1/notes", data={"csrf_token": session_token, "body": "x"}, headers=HTML,
                   follow_redirects=False)
        assert r.status_code == 403 and "no valid session" in r.text  # the session is gone: its token with it


def test_no_route_checks_csrf_itself() -> None:
    """Only casemgr/web/csrf.py compares tokens or reads the token field from a request."""
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.name == "csrf.py":
            continue
        text = path.read_text(encoding="utf-8")
        if "tokens_equal(" in text.replace("def tokens_equal(", "") or 'form.get("csrf_token")' in text:
            offenders.append(str(path.relative_to(PACKAGE)))
    assert offenders == []
