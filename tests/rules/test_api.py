"""/api/rules: evaluate, validate, simulate, publish and roll back over HTTP, with role checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

ROOT = Path(__file__).resolve().parents[2]
FILES = {p.name: p.read_text() for p in sorted((ROOT / "policies" / "rules").glob("*.yaml"))}


@pytest.mark.usefixtures("single_person_publish")  # publish mechanics; four eyes: test_four_eyes.py
def test_rules_api_lifecycle(app, api_key) -> None:  # type: ignore[no-untyped-def]
    gov = TestClient(app, headers={"X-API-Key": api_key("governance")})
    agent = TestClient(app, headers={"X-API-Key": api_key("agent")})
    r = gov.post("/api/rules/evaluate", json={"facts": {"type": "contract", "amount": 50000}})
    assert r.status_code == 200
    d = r.json()
    assert d["queue"] == "contracts-legal-review" and d["fired"][0]["rule"] == "high-value"

    bad = dict(FILES, **{"contracts.yaml": FILES["contracts.yaml"].replace("contracts-intake", "nowhere")})
    r = gov.post("/api/rules/validate", json={"files": bad})
    assert r.status_code == 200 and r.json()["ok"] is False
    assert any(p["file"] == "contracts.yaml" and "nowhere" in p["message"] for p in r.json()["problems"])
    r = gov.post("/api/rules/publish", json={"files": bad, "reason": "broken"})
    assert r.status_code == 422 and r.json()["problems"][0]["file"] == "contracts.yaml"

    changed = dict(FILES, **{"contracts.yaml": FILES["contracts.yaml"].replace(
        "queue: contracts-intake", "queue: contracts-renewals")})
    assert agent.post("/api/rules/publish", json={"files": changed, "reason": "x"}).status_code == 403
    r = gov.post("/api/rules/publish", json={"files": FILES, "reason": "initial"})
    assert r.status_code == 200 and r.json()["changed"] is True
    v1 = r.json()["version"]
    r = gov.post("/api/rules/publish", json={"files": changed, "reason": "renewals for all"})
    assert r.status_code == 200
    v2 = r.json()["version"]
    assert "+      queue: contracts-renewals" in r.json()["diff"]
    st = gov.get("/api/rules").json()
    assert st["published_active"] == v2 and [v["version"] for v in st["versions"]] == [v2, v1]
    assert gov.get(f"/api/rules/versions/{v1}").json()["files"]["contracts.yaml"] == FILES["contracts.yaml"]
    r = gov.post("/api/rules/rollback", json={"reason": "undo"})
    assert r.status_code == 200 and r.json()["version"] == v1
    assert gov.post("/api/rules/rollback", json={"to": "nope"}).status_code == 422
    assert gov.get("/api/rules/versions/nope").status_code == 404


def test_rules_api_simulate(app, api_key) -> None:  # type: ignore[no-untyped-def]
    from casemgr.cases.models import Case
    from casemgr.db import write_session

    with write_session() as s:
        for _ in range(3):
            s.add(Case(case_type="contract", stage="new", channel="email"))
    gov = TestClient(app, headers={"X-API-Key": api_key("governance")})
    changed = dict(FILES, **{"contracts.yaml": FILES["contracts.yaml"].replace(
        "queue: contracts-intake", "queue: contracts-renewals")})
    r = gov.post("/api/rules/simulate", json={"files": changed, "last": 10})
    assert r.status_code == 200, r.text
    rep = r.json()
    assert rep["evaluated"] == 3 and rep["route_changed"] == 3
    assert rep["queue_moves"] == [{"from": "contracts-intake", "to": "contracts-renewals", "count": 3}]
    r = gov.post("/api/rules/simulate", json={"files": {"../x.yaml": "rules: []"}})
    assert r.status_code == 422
