"""Passwords, sessions, API keys, own-role changes and the API docs (issue 18, ASVS V2, V3, V4, V8, V14)."""

from __future__ import annotations

import os
import re
import stat
from datetime import timedelta

import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from casemgr.cli import app as cli
from casemgr.clock import now
from casemgr.db import read_session, write_session
from casemgr.errors import PermissionDenied, ValidationFailed
from casemgr.users import service as users
from casemgr.web.sessions import SESSION_COOKIE

HTML = {"Accept": "text/html"}


def _login(c: TestClient, name: str, pw: str) -> str:
    token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login", headers=HTML).text)
    assert token
    r = c.post("/login", data={"username": name, "password": pw, "csrf_token": token.group(1)}, headers=HTML,
               follow_redirects=False)
    assert r.status_code == 303, r.text[:300]
    page = c.get("/queue", headers=HTML)
    csrf = re.search(r'data-csrf="([^"]+)"', page.text)
    return csrf.group(1) if csrf else ""


# ---------------------------------------------------------------- passwords (ASVS 2.1)


@pytest.mark.parametrize("password", ["short-pw-1", "password1234", "qwertyuiop123", "iloveyou12345!",
                                      "aaaaaaaaaaaaaaaa", "x" * 129])
def test_weak_passwords_are_refused_everywhere(password: str, app, make_user) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed), write_session() as s:
        users.create_user(s, "weak", password, ["agent"])
    r = CliRunner().invoke(cli, ["users", "add", "weak-cli", "--role", "agent", "--password", password])
    assert r.exit_code == 1 and "password" in r.output
    admin, pw = make_user("admin")
    target, _ = make_user("agent")
    r = CliRunner().invoke(cli, ["users", "set-password", target, "--password", password])
    assert r.exit_code == 1 and "password" in r.output
    with TestClient(app) as c:
        csrf = _login(c, admin, pw)
        r = c.post("/admin/users", data={"csrf_token": csrf, "username": "weak-web", "password": password,
                                         "roles": ["agent"]}, headers=HTML)
        assert r.status_code == 422 and "password" in r.text
    with read_session() as s:
        assert all(users.get_user_by_name(s, n) is None for n in ("weak", "weak-cli", "weak-web"))


def test_a_long_uncommon_password_is_accepted_and_changing_it_ends_sessions(app, make_user) -> None:  # type: ignore[no-untyped-def]
    name, pw = make_user("agent")
    with TestClient(app) as c:
        _login(c, name, pw)
        r = CliRunner().invoke(cli, ["users", "set-password", name, "--password", "violet-kettle-morning-42"])
        assert r.exit_code == 0, r.output
        assert c.get("/queue", headers=HTML, follow_redirects=False).status_code == 303  # logged out
        _login(c, name, "violet-kettle-morning-42")


def test_users_change_their_own_password_on_the_web_by_the_same_rules(app, make_user) -> None:  # type: ignore[no-untyped-def]
    name, pw = make_user("agent")
    with TestClient(app) as c:
        csrf = _login(c, name, pw)
        assert 'href="/account/password"' in c.get("/queue", headers=HTML).text
        weak = c.post("/account/password", data={"csrf_token": csrf, "current": pw, "new": "password1234"},
                      headers=HTML)
        assert weak.status_code == 422 and "too common" in weak.text
        wrong = c.post("/account/password", data={"csrf_token": csrf, "current": "not-my-password",
                                                  "new": "violet-kettle-morning-42"}, headers=HTML)
        assert wrong.status_code == 403
        ok = c.post("/account/password", data={"csrf_token": csrf, "current": pw, "new": "violet-kettle-morning-42"},
                    headers=HTML, follow_redirects=False)
        assert ok.status_code == 303 and ok.headers["location"] == "/login"
        assert c.get("/queue", headers=HTML, follow_redirects=False).status_code == 303
        _login(c, name, "violet-kettle-morning-42")


def test_demo_users_get_compliant_passwords() -> None:
    from casemgr.demo import seed_users
    from casemgr.users.passwords import problem

    made = seed_users()
    assert made and all(problem(pw, name) is None for name, pw in made.items())


# ---------------------------------------------------------------- sessions (ASVS 3.3, 3.4, 8.2)


def test_an_idle_session_ends_before_the_absolute_limit(app, make_user) -> None:  # type: ignore[no-untyped-def]
    from casemgr.config import get_settings

    settings = get_settings()
    assert settings.session_idle_minutes < settings.session_ttl_minutes
    name, pw = make_user("agent")
    start = now()
    with time_machine.travel(start, tick=False) as clock, TestClient(app) as c:
        _login(c, name, pw)
        for _ in range(3):  # active use keeps it alive past the idle limit ...
            clock.shift(timedelta(minutes=settings.session_idle_minutes - 5))
            assert c.get("/queue", headers=HTML, follow_redirects=False).status_code == 200
        clock.shift(timedelta(minutes=settings.session_idle_minutes + 1))  # ... idleness ends it
        assert c.get("/queue", headers=HTML, follow_redirects=False).status_code == 303
    with time_machine.travel(start, tick=False) as clock, TestClient(app) as c:
        _login(c, name, pw)
        elapsed = timedelta()
        while elapsed < timedelta(minutes=settings.session_ttl_minutes - 10):  # busy all day: the absolute end holds
            clock.shift(timedelta(minutes=10))
            elapsed += timedelta(minutes=10)
            assert c.get("/queue", headers=HTML, follow_redirects=False).status_code == 200
        clock.shift(timedelta(minutes=11))
        assert c.get("/queue", headers=HTML, follow_redirects=False).status_code == 303


def test_authenticated_answers_are_not_cached(app, make_user, agent_client) -> None:  # type: ignore[no-untyped-def]
    name, pw = make_user("agent")
    with TestClient(app) as c:
        _login(c, name, pw)
        assert c.get("/queue", headers=HTML).headers.get("cache-control") == "no-store"
    assert agent_client.get("/api/cases").headers.get("cache-control") == "no-store"


def test_cookies_are_secure_and_hsts_is_sent_over_https(app, make_user) -> None:  # type: ignore[no-untyped-def]
    name, pw = make_user("agent")
    with TestClient(app, base_url="https://testserver") as c:  # no CASEMGR_COOKIE_SECURE: the scheme decides
        page = c.get("/login", headers=HTML)
        assert "max-age" in page.headers.get("strict-transport-security", "")
        assert "Secure" in page.headers["set-cookie"]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        r = c.post("/login", data={"username": name, "password": pw, "csrf_token": token.group(1)},
                   headers=HTML, follow_redirects=False)
        cookie = next(h for h in r.headers.get_list("set-cookie") if h.startswith(SESSION_COOKIE + "="))
        assert "Secure" in cookie
    with TestClient(app) as c:  # plain http (a local run): no HSTS, no Secure flag that would break login
        page = c.get("/login", headers=HTML)
        assert "strict-transport-security" not in page.headers and "Secure" not in page.headers["set-cookie"]


@pytest.mark.sqlite_only
def test_a_new_sqlite_database_file_is_private(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from casemgr import migrate
    from casemgr.config import get_settings
    from casemgr.runtime import rebuild

    monkeypatch.setenv("CASEMGR_DATA_DIR", str(tmp_path / "new-data"))
    old = os.umask(0o022)
    try:
        rebuild()
        migrate.upgrade()
        db = get_settings().resolved_data_dir / "casemgr.sqlite3"
        assert stat.S_IMODE(db.stat().st_mode) == 0o600
        with write_session() as s:  # the app's own engine on a fresh file too
            users.create_user(s, "someone", "violet-kettle-morning-42", ["agent"])
        for f in db.parent.glob("casemgr.sqlite3*"):
            assert stat.S_IMODE(f.stat().st_mode) & 0o077 == 0, f
    finally:
        os.umask(old)
        rebuild()


# ---------------------------------------------------------------- API keys (ASVS 4.1.3)


def test_unknown_scopes_are_refused() -> None:
    with write_session() as s:
        owner = users.create_user(s, "keyowner", "violet-kettle-morning-42", ["agent"])
        owner_id = owner.id
    for scopes in (["agnet"], ["agent", "superuser"]):
        with pytest.raises(ValidationFailed, match="unknown scope"), write_session() as s:
            users.create_api_key(s, "k", owner_id, scopes)
    r = CliRunner().invoke(cli, ["users", "api-key", "crm", "--scope", "root"])
    assert r.exit_code == 1 and "unknown scope" in r.output


def test_an_ownerless_key_cannot_gain_roles_by_naming_them(app) -> None:  # type: ignore[no-untyped-def]
    """On today's main an owner-less key scoped ["admin"] acts as an admin."""
    from casemgr.users.models import ApiKey

    with pytest.raises(ValidationFailed, match="without an owner"), write_session() as s:
        users.create_api_key(s, "rogue", None, ["admin"])
    # A key row that names roles (from before this check, or written straight into the database) gets none.
    with write_session() as s:
        _, secret = users.create_api_key(s, "crm", None, ["intake"])
        key = s.execute(select(ApiKey).where(ApiKey.name == "crm")).scalar_one()
        key.scopes = ["intake", "admin", "governance"]
    users.forget_api_keys()
    with TestClient(app) as c:
        assert c.get("/admin/users", headers={"X-API-Key": secret, **HTML}).status_code == 403
        assert c.get("/api/cases", headers={"X-API-Key": secret}).status_code == 403
        assert c.post("/api/intake", headers={"X-API-Key": secret},
                      json={"subject": "from the CRM", "body": "hello"}).status_code == 201


# ---------------------------------------------------------------- own roles (ASVS 1.4.x separation of duties)


def test_an_admin_cannot_change_their_own_roles_when_another_admin_exists(app, make_user) -> None:  # type: ignore[no-untyped-def]
    admin, pw = make_user("admin")
    make_user("admin")
    with read_session() as s:
        me = users.get_user_by_name(s, admin)
        assert me is not None
        my_id = int(me.id or 0)
    with pytest.raises(PermissionDenied), write_session() as s:
        users.set_roles(s, my_id, ["admin", "governance"], actor=f"user:{admin}", acting_user_id=my_id)
    with TestClient(app) as c:
        csrf = _login(c, admin, pw)
        r = c.post(f"/admin/users/{my_id}/roles", data={"csrf_token": csrf, "roles": ["admin", "governance"]},
                   headers=HTML)
        assert r.status_code == 403 and "another admin" in r.text
    from casemgr.security.models import SecurityEvent

    with read_session() as s:
        assert users.roles_of(s, my_id) == ["admin"]
        # The page renders its own 403: the refusal still reaches the security log (RefusalLogMiddleware).
        denied = s.execute(select(SecurityEvent).where(SecurityEvent.kind == "access_denied")).scalars().all()
        assert [(d.username, d.path) for d in denied] == [(f"user:{admin}", f"POST /admin/users/{my_id}/roles")]


def test_a_sole_admin_changing_their_own_roles_is_flagged_on_the_governance_page(app, make_user) -> None:  # type: ignore[no-untyped-def]
    admin, pw = make_user("admin")
    with read_session() as s:
        me = users.get_user_by_name(s, admin)
        assert me is not None
        my_id = int(me.id or 0)
    with TestClient(app) as c:
        csrf = _login(c, admin, pw)
        r = c.post(f"/admin/users/{my_id}/roles", data={"csrf_token": csrf, "roles": ["admin", "governance"]},
                   headers=HTML, follow_redirects=False)
        assert r.status_code == 303
    gov, gpw = make_user("governance")
    with TestClient(app) as c:
        _login(c, gov, gpw)
        page = c.get("/governance/policy", headers=HTML)
        assert page.status_code == 200 and 'id="flagged-role-changes"' in page.text
        assert f"user:{admin}" in page.text and "governance" in page.text


# ---------------------------------------------------------------- API docs (ASVS 14.5)


def test_api_docs_need_a_login_unless_made_public(app, agent_client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from casemgr.config import get_settings

    with TestClient(app) as anon:
        assert anon.get("/openapi.json").status_code == 401
        r = anon.get("/docs", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")
    assert agent_client.get("/openapi.json").json()["paths"]
    assert agent_client.get("/docs").status_code == 200
    monkeypatch.setattr(get_settings(), "public_api_docs", True)
    with TestClient(app) as anon:
        assert anon.get("/openapi.json").status_code == 200 and anon.get("/docs").status_code == 200
