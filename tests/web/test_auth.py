"""Login, sessions (signed HttpOnly SameSite cookie, rotation, expiry), logout, lockout, security headers."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import select

from casemgr.web.sessions import SESSION_COOKIE

from ._helpers import HTML, login, login_csrf


def _post_login(c: TestClient, username: str, password: str, next_url: str = "/queue"):  # type: ignore[no-untyped-def]
    token = login_csrf(c)
    return c.post("/login", data={"username": username, "password": password, "csrf_token": token, "next": next_url},
                  headers=HTML, follow_redirects=False)


def test_login_sets_a_signed_httponly_samesite_cookie_and_rotates_it(app, make_user) -> None:  # type: ignore[no-untyped-def]
    name, pw = make_user("agent")
    with TestClient(app) as c:
        r = _post_login(c, name, pw)
        assert r.status_code == 303 and r.headers["location"] == "/queue"
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "="))
        assert "HttpOnly" in cookie and "samesite=lax" in cookie.lower() and "Path=/" in cookie
        first = c.cookies.get(SESSION_COOKIE)
        assert first and "." in first  # token.signature
        assert c.get("/queue", headers=HTML).status_code == 200
    # A browser that already carries a session cookie (planted, or from before) gets a new one at login,
    # and the old session is deleted (no session fixation).
    with TestClient(app) as c2:
        token = login_csrf(c2)
        c2.cookies.set(SESSION_COOKIE, first, domain="testserver.local", path="/")
        r = c2.post("/login", data={"username": name, "password": pw, "csrf_token": token}, headers=HTML,
                    follow_redirects=False)
        assert r.status_code == 303
        second = r.cookies.get(SESSION_COOKIE)
        assert second and second != first
        assert c2.get("/queue", headers=HTML).status_code == 200
    with TestClient(app, cookies={SESSION_COOKIE: first}) as old:
        r = old.get("/queue", headers=HTML, follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_secure_cookie_flag_follows_settings(app, make_user, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from casemgr.config import get_settings

    monkeypatch.setattr(get_settings(), "cookie_secure", True)
    name, pw = make_user("agent")
    with TestClient(app, base_url="https://testserver") as c:
        r = _post_login(c, name, pw)
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "="))
        assert "Secure" in cookie


def test_tampered_cookie_is_refused(app, make_user) -> None:  # type: ignore[no-untyped-def]
    name, pw = make_user("agent")
    with TestClient(app) as c:
        _post_login(c, name, pw)
        value = c.cookies.get(SESSION_COOKIE)
        token, sig = value.rsplit(".", 1)
    for forged in (token, token + ".AAAA", "x" + value):
        with TestClient(app, cookies={SESSION_COOKIE: forged}) as f:
            assert f.get("/queue", headers=HTML, follow_redirects=False).status_code == 303
            assert f.get("/api/cases").status_code == 401


def test_session_expires(app, make_user) -> None:  # type: ignore[no-untyped-def]
    import time_machine

    from casemgr.clock import now
    from casemgr.config import get_settings

    name, pw = make_user("agent")
    with TestClient(app) as c:
        _post_login(c, name, pw)
        assert c.get("/queue", headers=HTML).status_code == 200
        later = now() + timedelta(minutes=get_settings().session_ttl_minutes + 1)
        with time_machine.travel(later, tick=False):
            r = c.get("/queue", headers=HTML, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_logout_ends_the_session(app, make_user) -> None:  # type: ignore[no-untyped-def]
    name, pw = make_user("agent")
    with TestClient(app) as c:
        csrf = login(c, name, pw)
        value = c.cookies.get(SESSION_COOKIE)
        r = c.post("/logout", data={"csrf_token": csrf}, follow_redirects=False)
        assert r.status_code == 303
    with TestClient(app, cookies={SESSION_COOKIE: value}) as old:
        assert old.get("/queue", headers=HTML, follow_redirects=False).status_code == 303


def test_wrong_password_is_refused_and_recorded(app, make_user) -> None:  # type: ignore[no-untyped-def]
    # Throttling, identical answers and the security log: tests/security/test_accounts.py (issue 18).
    from casemgr.db import read_session
    from casemgr.security.models import SecurityEvent

    name, _ = make_user("agent")
    with TestClient(app) as c:
        r = _post_login(c, name, "wrong-password")
        assert r.status_code == 401 and "Wrong username or password" in r.text
        assert SESSION_COOKIE not in c.cookies
    with read_session() as s:
        rows = s.execute(select(SecurityEvent).where(SecurityEvent.kind == "login_failed")).scalars().all()
        assert [(r.username, r.count) for r in rows] == [(name, 1)]


def test_login_form_needs_its_csrf_token(app, make_user) -> None:  # type: ignore[no-untyped-def]
    name, pw = make_user("agent")
    with TestClient(app) as c:
        r = c.post("/login", data={"username": name, "password": pw, "csrf_token": "forged"}, headers=HTML,
                   follow_redirects=False)
        assert r.status_code == 403 and SESSION_COOKIE not in c.cookies


def test_next_parameter_cannot_redirect_off_site(app, make_user) -> None:  # type: ignore[no-untyped-def]
    name, pw = make_user("agent")
    for evil, expected in (("https://evil.example/", "/queue"), ("//evil.example/x", "/queue"),
                           ("/\\evil.example", "/queue"), ("/review", "/review")):
        with TestClient(app) as c:
            r = _post_login(c, name, pw, next_url=evil)
            assert r.headers["location"] == expected, evil


def test_anonymous_pages_redirect_with_next(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        r = c.get("/cases/5", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login?next=/cases/5"
        login_page = c.get("/login?next=/cases/5")
        assert re.search(r'name="next" value="/cases/5"', login_page.text)


def test_security_headers_on_every_response(app) -> None:  # type: ignore[no-untyped-def]
    with TestClient(app) as c:
        for path in ("/login", "/static/app.css", "/api/cases", "/healthz", "/queue"):
            r = c.get(path, follow_redirects=False)
            csp = r.headers.get("content-security-policy", "")
            assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, path
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers.get("referrer-policy")


def test_templates_have_no_inline_scripts_or_styles() -> None:
    from casemgr.web.templating import TEMPLATES_DIR

    for path in TEMPLATES_DIR.rglob("*.html"):
        text = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", text), f"inline script in {path.name}"
        assert "<style" not in text and not re.search(r"\sstyle=", text), f"inline style in {path.name}"
        assert not re.search(r"\son[a-z]+=", text), f"inline event handler in {path.name}"


def test_only_a_hash_of_the_session_token_is_stored(app, make_user) -> None:  # type: ignore[no-untyped-def]
    import hashlib

    from casemgr.db import read_session
    from casemgr.users.models import WebSession
    from casemgr.web.sessions import unsign

    name, pw = make_user("agent")
    with TestClient(app) as c:
        csrf = login(c, name, pw)
        token = unsign(c.cookies.get(SESSION_COOKIE))
    assert token
    with read_session() as s:
        rows = s.execute(select(WebSession)).scalars().all()
    assert [r.token_hash for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
    assert all(token not in (r.token_hash, r.csrf_token) for r in rows) and rows[0].csrf_token == csrf
