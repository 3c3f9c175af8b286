"""Every list endpoint is bounded, and a malformed cursor is a 400, never a 500 (issue 18).

`GET /api/ai/suggestions` (and a case's notes, tasks, audit and AI decisions) answered every row there was;
a crafted `cursor` (a time without a time zone, an id past BIGINT) made `GET /api/cases` answer 500.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from casemgr.web.paging import MAX_LIMIT

# Lists whose length is fixed by configuration, not by data that grows with use.
BOUNDED_BY_CONFIG = {
    "/api/case-types": "one item per case type in policies/case-types.yaml",
    "/api/review/metrics": "one row per group: AI kind, category, model version or policy version",
    "/api/customers/{email}/cases": "the newest customers.service.MAX_CASES (200) cases",
    "/api/macros": "one item per macro in policies/macros/*.yaml",
}


def _cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]] if ref else schema


def _list_routes(spec: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """GET operations whose JSON answer is a list, or an object holding a list of records."""
    out = []
    for path, ops in spec["paths"].items():
        op = ops.get("get")
        content = (op or {}).get("responses", {}).get("200", {}).get("content", {})
        if "application/json" not in content:
            continue
        schema = _resolve(spec, content["application/json"]["schema"])
        record_lists = [p for p in schema.get("properties", {}).values()
                        if p.get("type") == "array" and "$ref" in p.get("items", {})]
        if schema.get("type") == "array" or record_lists:
            out.append((path, op))
    return out


def test_every_list_endpoint_takes_a_bounded_limit(app) -> None:  # type: ignore[no-untyped-def]
    spec = app.openapi()
    routes = _list_routes(spec)
    assert {"/api/ai/suggestions", "/api/cases", "/api/cases/{case_id}/notes", "/api/notifications"} <= \
        {p for p, _ in routes}
    unbounded = []
    for path, op in routes:
        params = {p["name"]: p["schema"] for p in op.get("parameters", []) if p["in"] == "query"}
        limit = params.get("limit", {})
        bounded = limit.get("maximum", 10**9) <= MAX_LIMIT and limit.get("default", 10**9) <= MAX_LIMIT
        if path not in BOUNDED_BY_CONFIG and not bounded:
            unbounded.append(path)
    assert unbounded == [], f"list endpoints without a limit of at most {MAX_LIMIT}: {unbounded}"


def _suggestions(make_case: Any, n: int) -> None:
    from casemgr.db import write_session
    from casemgr.governance.models import AIDecision

    case_id = make_case()
    with write_session() as s:
        for i in range(n):
            s.add(AIDecision(case_id=case_id, kind="approve_refund", field=None, proposed={"amount": i},
                             outcome="suggested", review_status="pending", owner_role="agent",
                             policy_version="p", model_version="m", provider="local", confidence=0.5))


def test_suggestions_are_paged(agent_client, make_case) -> None:  # type: ignore[no-untyped-def]
    _suggestions(make_case, MAX_LIMIT + 5)
    first = agent_client.get("/api/ai/suggestions")
    assert first.status_code == 200 and len(first.json()) == 50
    full = agent_client.get("/api/ai/suggestions", params={"limit": MAX_LIMIT}).json()
    rest = agent_client.get("/api/ai/suggestions", params={"limit": MAX_LIMIT, "offset": MAX_LIMIT}).json()
    assert len(full) == MAX_LIMIT and len(rest) == 5 and not {d["id"] for d in full} & {d["id"] for d in rest}
    for bad in ({"limit": MAX_LIMIT + 1}, {"limit": 0}, {"offset": -1}):
        assert agent_client.get("/api/ai/suggestions", params=bad).status_code == 422


@pytest.mark.parametrize("path", ["notes", "tasks", "audit", "ai/decisions"])
def test_case_sub_lists_are_paged(agent_client, make_case, path: str) -> None:  # type: ignore[no-untyped-def]
    case_id = make_case()
    for i in range(3):
        r = agent_client.post(f"/api/cases/{case_id}/notes", json={"body": f"note {i}"})
        assert r.status_code == 201, r.text
    url = f"/api/cases/{case_id}/{path}"
    everything = agent_client.get(url).json()
    one = agent_client.get(url, params={"limit": 1, "offset": 1})
    assert one.status_code == 200 and one.json() == everything[1:2]
    assert agent_client.get(url, params={"limit": MAX_LIMIT + 1}).status_code == 422


BAD_CURSORS = {
    "time without zone": _cursor(["2026-01-01T00:00:00", 1]),
    "id past bigint": _cursor(["2026-01-01T00:00:00+00:00", 2**64]),
    "negative id": _cursor([None, -1]),
    "id as text": _cursor([None, "1"]),
    "boolean id": _cursor([None, True]),
    "time not a string": _cursor([5, 1]),
    "not a time": _cursor(["soon", 1]),
    "wrong shape": _cursor({"due": None, "id": 1}),
    "three items": _cursor([None, 1, 2]),
    "not base64": "!!!",
    "not json": base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    "non-ascii": "é",
}
# The queue page's cursors: [sort, segment, keyset values].
QUEUE_CURSORS = {
    "queue: time without zone": _cursor(["sla", 0, ["2026-01-01T00:00:00", 1]]),
    "queue: id past bigint": _cursor(["sla", 1, [2**64]]),
    "queue: segment out of range": _cursor(["sla", 9, [1]]),
    "queue: segment as text": _cursor(["sla", "0", ["2026-01-01T00:00:00+00:00", 1]]),
    "queue: values not a list": _cursor(["sla", 1, 5]),
}


@pytest.mark.parametrize("name", sorted(BAD_CURSORS))
def test_malformed_cursor_is_a_400_with_a_message(agent_client, app, make_user, name: str) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient
    from web._helpers import login

    r = agent_client.get("/api/cases", params={"cursor": BAD_CURSORS[name]})
    assert r.status_code == 400, r.text
    assert r.json()["error"] == "bad_request" and "cursor" in r.json()["detail"]
    with TestClient(app) as browser:
        login(browser, *make_user("agent"))
        page = browser.get("/queue", params={"cursor": BAD_CURSORS[name]}, headers={"Accept": "text/html"})
        assert page.status_code == 400, page.text[:300]


@pytest.mark.parametrize("name", sorted(QUEUE_CURSORS))
def test_malformed_queue_page_cursor_is_a_400(app, make_user, name: str) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient
    from web._helpers import login

    with TestClient(app) as browser:
        login(browser, *make_user("agent"))
        page = browser.get("/queue", params={"sort": "sla", "cursor": QUEUE_CURSORS[name]},
                           headers={"Accept": "text/html"})
        assert page.status_code == 400, page.text[:300]


def test_a_real_cursor_still_pages(agent_client, make_case) -> None:  # type: ignore[no-untyped-def]
    ids = {make_case(subject=f"case {i}") for i in range(3)}
    first = agent_client.get("/api/cases", params={"limit": 2}).json()
    second = agent_client.get("/api/cases", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert {c["id"] for c in first["items"] + second["items"]} == ids and second["next_cursor"] is None
