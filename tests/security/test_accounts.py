"""Accounts (issue 18): growing delays instead of a hard lock, the same answer for known and unknown names,
X-Forwarded-For only from trusted proxies, and the security log of every attempt and refusal."""

from __future__ import annotations

import re
import socket
import statistics
import subprocess
import sys
import time
from datetime import timedelta

import httpx
import pytest
import time_machine
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from casemgr.clock import now
from casemgr.db import read_session
from casemgr.security.models import SecurityEvent
from casemgr.web.sessions import SESSION_COOKIE

HTML = {"Accept": "text/html"}


def _csrf(c: TestClient | httpx.Client) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login", headers=HTML).text)
    assert m
    return m.group(1)


def _attempt(c: TestClient, username: str, password: str, token: str | None = None):  # type: ignore[no-untyped-def]
    token = token or _csrf(c)
    return c.post("/login", data={"username": username, "password": password, "csrf_token": token},
                  headers=HTML, follow_redirects=False)


def test_the_owner_gets_in_after_a_bounded_delay_not_a_lockout(app, make_user) -> None:  # type: ignore[no-untyped-def]
    """Today's main locks the account for 15 minutes after 5 failures, so an attacker can lock anyone out."""
    from casemgr.web.auth_routes import USER_POLICY

    name, pw = make_user("agent")
    start = now()
    with time_machine.travel(start, tick=False) as clock, TestClient(app) as c:
        statuses = []
        for _ in range(12):  # an attacker hammering the name: delays grow, nothing locks
            statuses.append(_attempt(c, name, "wrong-password-guess").status_code)
        assert statuses[:USER_POLICY.free + 1] == [401] * (USER_POLICY.free + 1)
        assert set(statuses[USER_POLICY.free + 1:]) == {429}  # refused while the delay runs, without a guess
        r = _attempt(c, name, pw)
        assert r.status_code == 429 and "wait" in r.text
        clock.shift(USER_POLICY.cap_s + 1)  # the longest delay a name can get
        r = _attempt(c, name, pw)
        assert r.status_code == 303, r.text
        assert SESSION_COOKIE in c.cookies


def test_delays_grow_with_each_failure(app) -> None:  # type: ignore[no-untyped-def]
    from casemgr.web.auth_routes import USER_POLICY

    waits = []
    with time_machine.travel(now(), tick=False) as clock, TestClient(app) as c:
        for _ in range(USER_POLICY.free + 5):
            r = _attempt(c, "someone", "wrong-password-guess")
            assert r.status_code == 401
            from casemgr.db import read_session
            from casemgr.ratelimit.service import backoff_wait

            with read_session() as s:
                waits.append(backoff_wait("login-user:someone", session=s))
            clock.shift(waits[-1] + 0.5)  # wait out each delay, then fail again
    assert waits[:USER_POLICY.free] == [0.0] * USER_POLICY.free
    assert waits[USER_POLICY.free:] == [2.0, 4.0, 8.0, 16.0, 32.0]


def _normalised(text: str, name: str, token: str) -> str:
    # The form token is per browser, not per name; the name typed is echoed back into the form.
    return text.replace(token, "TOKEN").replace(name, "NAME")


def test_known_and_unknown_names_get_identical_answers(app, make_user) -> None:  # type: ignore[no-untyped-def]
    """Status and body, attempt by attempt, through the failures, the delay and the refusals."""
    known, _ = make_user("agent", username="alice-known-user")
    unknown = "alice-nonexistent"  # each answer echoes the name typed: compared with the name blanked out
    answers: dict[str, list[tuple[int, str]]] = {}
    for name in (known, unknown):
        with time_machine.travel(now(), tick=False), TestClient(app) as c:
            token = _csrf(c)
            answers[name] = []
            for _ in range(9):
                r = _attempt(c, name, "wrong-password-guess", token)
                answers[name].append((r.status_code, _normalised(r.text, name, token)))
    assert [s for s, _ in answers[known]] == [401] * 6 + [429] * 3
    assert answers[known] == answers[unknown]


def test_an_inactive_user_gets_the_same_answer_as_a_wrong_password(app, make_user) -> None:  # type: ignore[no-untyped-def]
    from casemgr.db import write_session
    from casemgr.users.service import get_user_by_name

    name, pw = make_user("agent", username="bob-inactive")
    with write_session() as s:
        user = get_user_by_name(s, name)
        assert user is not None
        user.active = False
    with TestClient(app) as c:
        token = _csrf(c)
        right = _attempt(c, name, pw, token)
        wrong = _attempt(c, name, "not-the-password", token)
    assert right.status_code == wrong.status_code == 401 and right.text == wrong.text


@pytest.mark.slow
@pytest.mark.timing  # a same-run time ratio
@pytest.mark.real_password_hash
def test_known_and_unknown_names_take_about_as_long(app, make_user) -> None:  # type: ignore[no-untyped-def]
    """Today's main answers a locked real user about 30 times faster than an unknown one (no hash)."""
    known, _ = make_user("agent")

    def timed(name: str) -> float:
        with TestClient(app) as c:
            token = _csrf(c)
            t = time.perf_counter()
            _attempt(c, name, "wrong-password-guess", token)
            return time.perf_counter() - t

    k, u = [], []
    for i in range(12):  # alternate, so machine noise hits both; different names so no delay builds up
        with time_machine.travel(now() + timedelta(hours=i)):
            k.append(timed(known))
            u.append(timed(f"ghost-{i}"))
    ratio = statistics.median(k) / statistics.median(u)
    assert 0.5 < ratio < 2.0, (ratio, k, u)


def test_unknown_names_and_refusals_reach_the_security_log(app, make_user) -> None:  # type: ignore[no-untyped-def]
    name, pw = make_user("agent")
    with time_machine.travel(now(), tick=False), TestClient(app) as c:
        for _ in range(7):
            _attempt(c, "mallory-guess", "wrong-password-guess")
        c.post("/login", data={"username": name, "password": pw, "csrf_token": "forged"}, headers=HTML)
        assert _attempt(c, name, pw).status_code == 303
        csrf = re.search(r'data-csrf="([^"]+)"', c.get("/queue", headers=HTML).text)
        assert csrf
        assert c.get("/admin/users", headers=HTML).status_code == 403
        assert c.post("/api/cases", json={}, headers={"X-CSRF-Token": "wrong"}).status_code == 403
        c.post("/logout", data={"csrf_token": csrf.group(1)})
    with read_session() as s:
        rows = {(r.kind, r.username): r for r in s.execute(select(SecurityEvent)).scalars()}
    kinds = {k for k, _ in rows}
    assert {"login_failed", "throttle_imposed", "login_throttled", "csrf_refused", "login_succeeded",
            "access_denied", "logout"} <= kinds, kinds
    assert rows[("login_failed", "mallory-guess")].count == 6
    assert rows[("login_throttled", "mallory-guess")].count == 1
    assert all(r.client == "testclient" for r in rows.values())
    assert rows[("access_denied", f"user:{name}")].path == "GET /admin/users"


def test_form_rate_limit_refusals_are_logged(client, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("CASEMGR_FORM_RATE_PER_MINUTE", "1")
    from casemgr.runtime import rebuild

    rebuild()
    statuses = []
    for i in range(3):
        page = client.get("/submit/complaint")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        statuses.append(client.post("/submit/complaint", data={
            "csrf_token": token.group(1), "name": "Pat", "email": "pat@example.com", "subject": f"Billing {i}",
            "description": "I was charged twice for one order."}).status_code)
    assert statuses[0] == 200 and statuses[-1] == 429
    with read_session() as s:
        rows = s.execute(select(SecurityEvent).where(SecurityEvent.kind == "rate_limited")).scalars().all()
    assert rows and rows[0].client == "testclient" and rows[0].path == "POST /submit/complaint"


def test_the_security_log_cannot_flood_the_audit_chain() -> None:
    from casemgr.audit.models import AuditEvent
    from casemgr.db import write_session
    from casemgr.security import service
    from casemgr.security.enums import SecurityEventKind

    with time_machine.travel(now(), tick=False):
        with write_session() as s:
            for _ in range(300):  # the same failure again and again: one row, one chain event
                service.record(s, SecurityEventKind.LOGIN_FAILED, client="203.0.113.7", username="root")
        with write_session() as s:
            for i in range(300):  # a different name each time (spraying): folded after a bounded number of rows
                service.record(s, SecurityEventKind.LOGIN_FAILED, client="203.0.113.8", username=f"user{i}")
    with read_session() as s:
        chain = s.execute(select(func.count()).select_from(AuditEvent)
                          .where(AuditEvent.action == "security.login_failed")).scalar_one()
        total = s.execute(select(func.sum(SecurityEvent.count))).scalar_one()
        folded = s.execute(select(SecurityEvent).where(SecurityEvent.username == "*")).scalar_one()
    assert total == 600  # every attempt counted
    assert chain <= 2 + service.ROWS_PER_CLIENT_PER_MINUTE
    assert folded.count == 300 - service.ROWS_PER_CLIENT_PER_MINUTE


def test_admins_read_and_export_the_security_log(app, make_user) -> None:  # type: ignore[no-untyped-def]
    from casemgr.db import write_session
    from casemgr.security import service
    from casemgr.security.enums import SecurityEventKind

    with write_session() as s:
        service.record(s, SecurityEventKind.LOGIN_FAILED, client="198.51.100.4", username="=HYPERLINK(1)")
    admin, pw = make_user("admin")
    with TestClient(app) as c:
        assert _attempt(c, admin, pw).status_code == 303
        page = c.get("/admin/security", headers=HTML)
        assert page.status_code == 200 and "198.51.100.4" in page.text and "login_failed" in page.text
        csv_text = c.get("/admin/security.csv").text
        assert "198.51.100.4" in csv_text and "'=HYPERLINK(1)" in csv_text
    agent, apw = make_user("agent")
    with TestClient(app) as c:
        _attempt(c, agent, apw)
        assert c.get("/admin/security", headers=HTML).status_code == 403
    out = subprocess.run([sys.executable, "-m", "casemgr.cli", "security", "export"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0 and "198.51.100.4" in out.stdout, out.stderr


# ---------------------------------------------------------------- X-Forwarded-For


def test_forwarded_for_is_ignored_unless_the_peer_is_a_trusted_proxy(app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from casemgr.config import get_settings
    from casemgr.web.clientaddr import real_client, trusted_networks

    def client_seen(peer: str, xff: str) -> str:
        with TestClient(app, client=(peer, 5000)) as c:
            _attempt(c, "probe", "wrong-password-guess")
            c.post("/login", data={"username": "probe", "csrf_token": "x"}, headers={"X-Forwarded-For": xff})
        with read_session() as s:
            row = s.execute(select(SecurityEvent).where(SecurityEvent.kind == "csrf_refused")
                            .order_by(SecurityEvent.id.desc())).scalars().first()
        assert row is not None
        return row.client

    assert client_seen("198.51.100.1", "203.0.113.50") == "198.51.100.1"  # default: nobody is trusted
    monkeypatch.setattr(get_settings(), "trusted_proxies", ["10.0.0.0/8"])
    assert client_seen("10.1.2.3", "203.0.113.51") == "203.0.113.51"
    assert client_seen("198.51.100.2", "203.0.113.52") == "198.51.100.2"  # untrusted peer: header ignored
    nets = trusted_networks()
    # The client can write anything left of the proxy's own entry: read from the right.
    assert real_client("10.0.0.1", "1.2.3.4, 203.0.113.9, 10.0.0.2", nets) == "203.0.113.9"
    assert real_client("10.0.0.1", "not-an-address", nets) == "10.0.0.1"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_served_app_ignores_forwarded_for_from_loopback(fresh_db) -> None:  # type: ignore[no-untyped-def]
    """Through `casemgr serve` as deployed: rotating X-Forwarded-For must not escape the per-address delay."""
    import os

    port = _free_port()
    env = {**os.environ, "CASEMGR_DATA_DIR": str(fresh_db)}
    proc = subprocess.Popen([sys.executable, "-m", "casemgr.cli", "serve", "--port", str(port), "--no-worker"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "serve did not start"
            time.sleep(0.2)
        statuses = []
        with httpx.Client(base_url=base, timeout=30) as c:
            token = _csrf(c)
            for i in range(35):  # a new name and a new claimed address every time
                r = c.post("/login", data={"username": f"spray{i}", "password": "guess-guess", "csrf_token": token},
                           headers={**HTML, "X-Forwarded-For": f"203.0.113.{i + 1}"})
                statuses.append(r.status_code)
        assert 429 in statuses, statuses
        with read_session() as s:
            clients = set(s.execute(select(SecurityEvent.client)).scalars())
        assert clients == {"127.0.0.1"}, clients
    finally:
        proc.terminate()
        proc.wait(20)
