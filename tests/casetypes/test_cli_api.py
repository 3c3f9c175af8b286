"""Issue 22: the casetypes CLI (check, diff, publish as a change request, versions, rollback) and the JSON API."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from casemgr.casetypes.documents import CASE_TYPES, CASE_TYPES_FILE
from casemgr.casetypes.registry import refresh_registry
from casemgr.cli import app
from tests.casetypes.helpers import V2_EDITS, edited, shipped_text


def _run(*args: str) -> tuple[int, str]:
    r = CliRunner().invoke(app, list(args))
    return r.exit_code, r.output


def test_cli_check_diff_publish_approve_versions_rollback(tmp_path: Path, make_user) -> None:  # type: ignore[no-untyped-def]
    alice, _ = make_user("governance")
    bob, _ = make_user("governance")
    candidate = tmp_path / CASE_TYPES_FILE
    candidate.write_text(shipped_text().replace("transitions: [triage, closed]", "transitions: [triage, limbo]", 1))
    code, out = _run("casetypes", "check", str(candidate))
    assert code == 2 and "limbo" in out and f"{CASE_TYPES_FILE}:" in out
    candidate.write_text(edited(shipped_text(), *V2_EDITS))
    assert _run("casetypes", "check", str(candidate)) == (0, "ok\n")
    code, out = _run("casetypes", "diff", str(candidate))
    assert code == 0 and "-      - name: feedback" in out and "+        sla: {hours: 2}" in out
    code, out = _run("casetypes", "publish", str(candidate), "--reason", "shorter", "--author", alice)
    assert code == 0 and "waiting for a second governance lead" in out, out
    request_id = out.split("change request ")[1].split()[0]
    code, out = _run("policy", "approve", request_id, "--author", alice)
    assert code == 1 and "different governance lead" in out  # four eyes
    code, out = _run("policy", "approve", request_id, "--author", bob)
    assert code == 0 and "case-types version" in out, out
    svg = tmp_path / "complaint.svg"
    code, out = _run("casetypes", "model", "complaint", "--version", "v2", "--compare", "v1", "--out", str(svg))
    assert code == 0 and "stage feedback removed" in out and "intake: SLA 4 h → 2 h" in out, out
    assert 'data-stage="feedback"' in svg.read_text() and "removed" in svg.read_text()
    code, out = _run("casetypes", "model", "nonesuch")
    assert code == 1 and "nonesuch" in out
    code, out = _run("casetypes", "versions")
    assert code == 0 and out.splitlines()[0].startswith("* v2") and "v1" in out.splitlines()[1]
    code, out = _run("casetypes", "rollback", "--to", "v1", "--reason", "back", "--author", bob)
    assert code == 0 and CASE_TYPES.shipped().version in out
    assert refresh_registry().version == CASE_TYPES.shipped().version
    code, out = _run("casetypes", "rollback", "--to", "v1", "--reason", "x", "--author", "nobody-here")
    assert code == 1 and "no active user" in out


def test_json_api_check_and_publish_through_four_eyes(app, api_key) -> None:  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    files = {CASE_TYPES_FILE: edited(shipped_text(), *V2_EDITS)}
    with TestClient(app) as c:
        lead1 = {"X-API-Key": api_key("governance")}
        lead2 = {"X-API-Key": api_key("governance")}
        r = c.post("/api/casetypes/check", headers=lead1, json={"files": {CASE_TYPES_FILE: "case_types: []\n"},
                                                               "reason": "x"})
        assert r.status_code == 200 and r.json()["ok"] is False and r.json()["problems"][0]["line"] >= 1
        r = c.post("/api/casetypes/check", headers=lead1, json={"files": files, "reason": "x"})
        assert r.json()["ok"] is True and "+        sla: {hours: 2}" in r.json()["diff"]
        r = c.post("/api/casetypes/publish", headers=lead1, json={"files": files, "reason": "shorter"})
        assert r.status_code == 200 and r.json()["status"] == "pending", r.text
        rid = r.json()["request"]["id"]
        assert c.post(f"/api/changes/{rid}/approve", headers=lead1, json={}).status_code == 403
        r = c.post(f"/api/changes/{rid}/approve", headers=lead2, json={"comment": "ok"})
        assert r.status_code == 200, r.text
        versions = c.get("/api/casetypes/versions", headers=lead2).json()
        assert [v["number"] for v in versions] == [2, 1] and versions[0]["is_active"]
        r = c.post("/api/casetypes/publish", headers=lead1, json={"kind": "nonsense", "files": files, "reason": "x"})
        assert r.status_code == 422 and "unknown process document" in r.text
        # An empty candidate (found by the full-coverage fuzz run) is a 422 with file:line, not a 500.
        r = c.post("/api/casetypes/publish", headers=lead1, json={"files": {}, "reason": "00"})
        assert r.status_code == 422 and r.json()["problems"][0]["line"] >= 1, r.text
