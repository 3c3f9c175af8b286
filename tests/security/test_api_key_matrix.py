"""The role x route matrix again, for API-key principals (tests/web/test_access_matrix.py drives it with browser
sessions): a key acts with exactly its owner's roles (narrowed by its scopes), on pages and API alike."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from web.test_access_matrix import ROLES, UNSAFE, _url, inventory

from casemgr.web.access import PERMISSIONS


def test_api_key_role_route_matrix(app: Any, api_key: Any, matrix_ids: dict[str, int]) -> None:
    ids = matrix_ids
    keys = {role: api_key(role) for role in ROLES}
    # A key scoped to one role of a multi-role owner gets that role only.
    keys["agent (scoped, owner is also admin)"] = api_key("agent", "admin", scopes=["agent"])
    routes = [(m, p, perm) for m, p, perm in inventory(app) if perm is not None]
    checked = 0
    with TestClient(app, raise_server_exceptions=False) as c:
        for method, path, perm in routes:
            if path in ("/logout",):
                continue
            url = _url(path, ids)
            for who, secret in keys.items():
                role = who.split(" ")[0]
                headers = {"X-API-Key": secret, **({} if path.startswith("/api") else {"Accept": "text/html"})}
                r = c.request(method, url, headers=headers, follow_redirects=False,
                              **({"data": {}} if method in UNSAFE and not path.startswith("/api") else {}))
                where = f"{who} {method} {path} ({perm}) -> {r.status_code}: {r.text[:200]}"
                assert r.status_code < 500, where
                if role in PERMISSIONS[perm]:
                    assert r.status_code not in (401, 403), where
                else:
                    assert r.status_code == 403, where
                checked += 1
    assert checked >= 20 * len(keys)
