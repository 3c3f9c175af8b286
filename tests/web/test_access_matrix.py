"""Role x route matrix, driven by the permission each route declares (casemgr/web/access.py is the source).

For every route of the app and every role (plus anonymous): allowed roles get the page (GET pages: 200) or at
least no 401/403; other roles get 403; anonymous page views are redirected to /login and anonymous API calls
get 401. Every state-changing request without a CSRF token, from a logged-in browser, gets 403.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from casemgr.web.access import PERMISSIONS

from ._helpers import HTML, login

ROLES = sorted(set().union(*PERMISSIONS.values()) - {"intake"})
# Routes that are public on purpose (login form, health, docs, static files, the public complaint form).
PUBLIC = ("/login", "/logout", "/", "/healthz", "/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect",
          "/metrics")  # Prometheus scrape endpoint: no browser session; the metrics room decides its protection
# The pages of issue 7: for allowed roles these must render (200), not merely pass the access check.
PAGES = ("/queue", "/cases/{case_id}", "/governance/policy", "/governance/rules", "/review", "/dashboard",
         "/admin/quarantine", "/admin/users", "/profile", "/notifications", "/notifications/bell", "/admin/outbox",
         "/governance/changes", "/governance/owners",  # issue 21: change requests, owner matrix
         "/governance/models",  # issue 21: candidate models, four-eyes activation
         "/governance/policy/form")  # issue 21: the AI policy form editor
PUBLIC_PREFIXES = ("/static", "/submit", "/public")
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def _permission_of(route: APIRoute) -> str | None:
    def walk(dep: Any) -> str | None:
        for sub in dep.dependencies:
            perm = getattr(sub.call, "permission", None)
            if perm:
                return perm  # type: ignore[no-any-return]
            found = walk(sub)
            if found:
                return found
        return None

    return walk(route.dependant)


def _routes(routes: list[Any], prefix: str = "", deps: tuple[Any, ...] = ()) -> list[tuple[str, APIRoute, tuple[Any, ...]]]:
    """Flatten included routers (FastAPI keeps them nested) into (full path, route, router dependencies)."""
    out: list[tuple[str, APIRoute, tuple[Any, ...]]] = []
    for r in routes:
        if isinstance(r, APIRoute):
            out.append((prefix + r.path, r, deps))
        elif hasattr(r, "original_router"):
            ctx = r.include_context
            out.extend(_routes(r.original_router.routes, prefix + (ctx.prefix or ""),
                               deps + tuple(ctx.dependencies or ())))
    return out


def inventory(app: Any) -> list[tuple[str, str, str | None]]:
    out = []
    for path, r, deps in _routes(app.routes):
        perm = _permission_of(r) or next((getattr(d.dependency, "permission", None) for d in deps
                                          if getattr(d.dependency, "permission", None)), None)
        for m in sorted(r.methods - {"HEAD", "OPTIONS"}):
            out.append((m, path, perm))
    return out


@pytest.fixture
def world(app, make_user, matrix_ids):  # type: ignore[no-untyped-def]
    """Real objects for path parameters, and one logged-in client per role."""
    ids = matrix_ids
    clients: dict[str, tuple[TestClient, str]] = {}
    for role in ROLES:
        name, pw = make_user(role)
        c = TestClient(app)
        clients[role] = (c, login(c, name, pw))
    yield {"ids": ids, "clients": clients}
    for c, _ in clients.values():
        c.close()


def _url(path: str, ids: dict[str, int]) -> str:
    return re.sub(r"\{(\w+)(:[^}]*)?\}", lambda m: str(ids.get(m.group(1), 1)), path)


def _is_public(path: str) -> bool:
    return path in PUBLIC or path.startswith(PUBLIC_PREFIXES)


def test_every_route_declares_a_permission_or_is_public(app) -> None:  # type: ignore[no-untyped-def]
    unprotected = [(m, p) for m, p, perm in inventory(app) if perm is None and not _is_public(p)]
    assert unprotected == [], f"routes without a permission from casemgr/web/access.py: {unprotected}"
    for _, _, perm in inventory(app):
        assert perm is None or perm in PERMISSIONS


def test_role_route_matrix(app, world) -> None:  # type: ignore[no-untyped-def]
    ids = world["ids"]
    routes = [(m, p, perm) for m, p, perm in inventory(app) if perm is not None]
    assert len(routes) >= 20
    checked = 0
    for method, path, perm in routes:
        url = _url(path, ids)
        is_api = path.startswith("/api")
        for role in ROLES:
            client, csrf = world["clients"][role]
            headers = {**HTML, "X-CSRF-Token": csrf} if not is_api else {"X-CSRF-Token": csrf}
            r = client.request(method, url, headers=headers, follow_redirects=False,
                               **({"data": {}} if method in UNSAFE and not is_api else {}))
            allowed = role in PERMISSIONS[perm]
            where = f"{role} {method} {path} ({perm}) -> {r.status_code}: {r.text[:200]}"
            assert r.status_code != 500, where
            if allowed:
                assert r.status_code not in (401, 403), where
                if method == "GET" and path in PAGES:
                    assert r.status_code == 200, where
            else:
                assert r.status_code == 403, where
            checked += 1
        # Anonymous: pages redirect to the login form, API calls get 401, page POSTs fail CSRF (403).
        with TestClient(app) as anon:
            r = anon.request(method, url, headers=HTML if not is_api else {}, follow_redirects=False)
            where = f"anonymous {method} {path} -> {r.status_code}"
            if is_api:
                assert r.status_code == 401, where
            elif method in UNSAFE:
                assert r.status_code == 403, where
            else:
                assert r.status_code == 303 and r.headers["location"].startswith("/login"), where
            # Without an Accept header too: page dependencies redirect whatever the client accepts.
            if not is_api and method == "GET":
                r2 = anon.get(url, follow_redirects=False)
                assert r2.status_code == 303 and r2.headers["location"].startswith("/login"), where
    assert checked == len(routes) * len(ROLES)
    assert {p for _, p, _ in routes} >= set(PAGES) - {"/dashboard"}


def test_every_state_changing_request_without_csrf_token_is_refused(app, make_user) -> None:  # type: ignore[no-untyped-def]
    name, pw = make_user(*ROLES)
    unsafe = [(m, p) for m, p, perm in inventory(app) if m in UNSAFE and not _is_public(p)]
    assert unsafe
    with TestClient(app) as c:
        csrf = login(c, name, pw)
        for method, path in unsafe:
            url = _url(path, {})
            r = c.request(method, url, headers=HTML, data={"csrf_token": "wrong"}, follow_redirects=False)
            assert r.status_code == 403 and 'data-error="csrf_failed"' in r.text, f"{method} {path}: {r.status_code}"
            r = c.request(method, url, data={"csrf_token": "wrong"}, follow_redirects=False)
            assert r.status_code == 403 and r.json()["error"] == "csrf_failed", f"{method} {path}: {r.status_code}"
            r = c.request(method, url, headers=HTML, follow_redirects=False)
            assert r.status_code == 403, f"{method} {path} without token: {r.status_code}"
        # Logout needs the token as well (no forced logout from another site).
        assert c.post("/logout", follow_redirects=False).status_code == 403
        # The session still works, and the right token passes the check.
        assert c.get("/queue", headers=HTML).status_code == 200
        assert c.post("/logout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303


def test_api_key_calls_need_no_csrf_token(app, api_key) -> None:  # type: ignore[no-untyped-def]
    key = api_key("agent")
    with TestClient(app) as c:
        r = c.post("/api/cases", json={"case_type": "complaint", "subject": "via key"}, headers={"X-API-Key": key})
        assert r.status_code == 201, r.text
        assert c.post("/api/cases", json={"case_type": "complaint", "subject": "x"}).status_code == 401
