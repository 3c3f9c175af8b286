"""An invalid case-types candidate sent to the publish API is a 422 with file:line problems, never a 500
(found by the schemathesis fuzz: `{"files": {}}` reached build_registry with an empty text)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_invalid_candidate_is_422_with_problems(app, api_key) -> None:  # type: ignore[no-untyped-def]
    c = TestClient(app, headers={"X-API-Key": api_key("governance")}, raise_server_exceptions=False)
    for files in ({}, {"case-types.yaml": "case_types: [\n"}):
        r = c.post("/api/casetypes/publish", json={"files": files, "kind": "case-types", "reason": "test"})
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["error"] == "validation_failed"
        assert body["problems"] and all({"file", "line", "message"} <= set(p) for p in body["problems"])
        assert "case-types.yaml:" in body["detail"]
