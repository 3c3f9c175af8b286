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
        assert any(p["file"].endswith("case-types.yaml") for p in body["problems"])


def test_app_answers_an_uncaught_policy_file_error_with_422(app) -> None:  # type: ignore[no-untyped-def]
    """The app-wide handler (web/errors.py) is the safety net for any route that lets PolicyFileError through."""
    from casemgr.policyfile import PolicyFileError, Problem

    def boom() -> None:
        raise PolicyFileError([Problem("rules/x.yaml", 7, "unknown key 'whenn'")])

    app.add_api_route("/api/test-policy-file-error", boom, methods=["GET"])
    r = TestClient(app, raise_server_exceptions=False).get("/api/test-policy-file-error")
    assert r.status_code == 422, r.text
    assert r.json()["detail"] == "rules/x.yaml:7: unknown key 'whenn'"
    assert r.json()["problems"][0]["line"] == 7
