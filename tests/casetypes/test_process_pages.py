"""Issue 22: the process owner's pages (/governance/processes) and who may use the new routes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from casemgr.casetypes.documents import CASE_TYPES_FILE
from casemgr.casetypes.edit import set_sla_hours
from casemgr.casetypes.registry import get_registry
from casemgr.errors import ValidationFailed
from casemgr.web.access import PERMISSIONS
from tests.casetypes.helpers import shipped_text
from tests.web._helpers import HTML, login

NEW_ROUTES = [("GET", "/process/models", "process.read"), ("GET", "/process/model/complaint", "process.read"),
              ("GET", "/api/casetypes/complaint/model.svg", "process.read"),
              ("GET", "/api/casetypes/versions", "process.read"),
              ("GET", "/governance/processes", "process.publish"),
              ("POST", "/governance/processes/sla", "process.publish"),
              ("POST", "/governance/processes/case-types", "process.publish"),
              ("POST", "/governance/processes/sop", "process.publish"),
              ("POST", "/governance/processes/rollback", "process.publish"),
              ("POST", "/api/casetypes/check", "process.publish"),
              ("POST", "/api/casetypes/publish", "process.publish")]
ROLES = sorted(set().union(*PERMISSIONS.values()) - {"intake"})


def test_sla_edit_changes_only_the_number_and_keeps_comments() -> None:
    text = shipped_text()
    out = set_sla_hours(text, "complaint", {"intake": 3, "triage": 8})
    changed = [(a, b) for a, b in zip(text.split("\n"), out.split("\n"), strict=True) if a != b]
    assert changed == [("        sla: {hours: 4}", "        sla: {hours: 3}")]
    # A stage without an SLA gets one under its name; a final or unknown stage is refused.
    added = set_sla_hours(text, "contract", {"active": 24})
    assert len(added.split("\n")) == len(text.split("\n")) + 1 and "      - name: active\n        sla: {hours: 24}" in added
    with pytest.raises(ValidationFailed, match="no stage"):
        set_sla_hours(text, "complaint", {"nowhere": 3})
    with pytest.raises(ValidationFailed, match="between 0"):
        set_sla_hours(text, "complaint", {"intake": -1})


def _browser(app: Any, make_user: Any, *roles: str) -> tuple[TestClient, str]:
    c = TestClient(app)
    return c, login(c, *make_user(*roles))


def test_new_routes_allow_exactly_their_roles(app, make_user) -> None:  # type: ignore[no-untyped-def]
    for role in ROLES:
        c, csrf = _browser(app, make_user, role)
        with c:
            for method, path, perm in NEW_ROUTES:
                is_api = path.startswith("/api")
                form = {"data": {"csrf_token": csrf}} if method == "POST" and not is_api else {}
                r = c.request(method, path, headers={"X-CSRF-Token": csrf, **({} if is_api else HTML)},
                              follow_redirects=False, **form)
                where = f"{role} {method} {path}: {r.status_code} {r.text[:200]}"
                assert r.status_code != 500, where
                if role in PERMISSIONS[perm]:
                    assert r.status_code not in (401, 403), where
                    if method == "GET":
                        assert r.status_code == 200, where
                else:
                    assert r.status_code == 403, where
    with TestClient(app) as anon:
        for method, path, _ in NEW_ROUTES:
            r = anon.request(method, path, headers={} if path.startswith("/api") else HTML, follow_redirects=False)
            assert r.status_code in ((401,) if path.startswith("/api") else (303, 403)), (method, path, r.status_code)


def test_owner_submits_an_sla_change_and_a_second_lead_approves(app, make_user, make_case) -> None:  # type: ignore[no-untyped-def]
    running = make_case()
    owner, csrf = _browser(app, make_user, "governance")
    with owner:
        r = owner.post("/governance/processes/sla", headers=HTML, follow_redirects=False,
                       data={"csrf_token": csrf, "case_type": "complaint", "sla_intake": "abc", "reason": "x"})
        assert r.status_code == 422 and "must be a number" in r.text
        r = owner.post("/governance/processes/sla", headers=HTML, follow_redirects=False,
                       data={"csrf_token": csrf, "case_type": "complaint", "sla_intake": "3", "reason": ""})
        assert r.status_code == 422 and "reason" in r.text.lower()
        r = owner.post("/governance/processes/sla", headers=HTML, follow_redirects=False,
                       data={"csrf_token": csrf, "case_type": "complaint", "sla_intake": "3", "reason": "faster"})
        assert r.status_code == 303 and r.headers["location"].endswith("done=request"), r.text
        page = owner.get("/governance/processes", headers=HTML).text
        rid = re.search(r'id="change-(\d+)" data-kind="case-types"', page)
        assert rid and "different governance lead" in page
        # Before anyone approves, the request links the model view of what it would publish.
        n = rid.group(1)
        link = re.search(rf'href="(/process/model/complaint\?change={n})" id="change-{n}-model-complaint"', page)
        assert link and f'id="change-{rid.group(1)}-model-contract"' not in page  # contract is unchanged
        preview = owner.get(link.group(1), headers=HTML).text
        assert 'id="change-preview"' in preview and "was 4 h" in preview and "intake: SLA 4 h → 3 h" in preview
        svg = owner.get(f"/api/casetypes/complaint/model.svg?request={rid.group(1)}").text
        assert 'data-hours="3"' in svg
    second, csrf2 = _browser(app, make_user, "governance")
    with second:
        r = second.post(f"/governance/changes/{rid.group(1)}/approve", headers=HTML, follow_redirects=False,
                        data={"csrf_token": csrf2, "comment": "ok"})
        assert r.status_code == 303 and r.headers["location"] == "/governance/processes?done=approve"
        svg = second.get("/api/casetypes/complaint/model.svg?compare=v1").text
        assert 'data-hours="3"' in svg and "was 4 h" in svg
        case_page = second.get(f"/cases/{running}", headers=HTML).text
        assert 'id="case-sla-target">4 h<' in case_page


def test_yaml_editor_shows_problems_with_line_and_the_diff(app, make_user) -> None:  # type: ignore[no-untyped-def]
    c, csrf = _browser(app, make_user, "governance")
    text = shipped_text()
    bad = text.replace("transitions: [triage, closed]", "transitions: [triage, limbo]", 1)
    line = next(i for i, t in enumerate(bad.split("\n"), 1) if "limbo" in t)
    with c:
        r = c.post("/governance/processes/case-types", headers=HTML,
                   data={"csrf_token": csrf, "text": bad, "action": "publish", "reason": "try"})
        assert r.status_code == 422 and f"{CASE_TYPES_FILE}:{line}:" in r.text and "limbo" in r.text
        good = text.replace("sla: {hours: 40}\n        tasks:\n          - {name: Gather",
                            "sla: {hours: 32}\n        tasks:\n          - {name: Gather", 1)
        r = c.post("/governance/processes/case-types", headers=HTML,
                   data={"csrf_token": csrf, "text": good, "action": "check"})
        assert r.status_code == 200 and "+        sla: {hours: 32}" in r.text
        # Nothing was stored by checking.
        assert get_registry().get("complaint").stage("investigation").sla.hours == 40  # type: ignore[union-attr]


def test_single_person_publish_and_rollback_from_the_page(app, make_user, make_case, single_person_publish) -> None:  # type: ignore[no-untyped-def]
    c, csrf = _browser(app, make_user, "governance")
    with c:
        r = c.post("/governance/processes/sop", headers=HTML, follow_redirects=False,
                   data={"csrf_token": csrf, "file": "complaint-triage.md", "text": "# Triage v2\n\nNew steps.\n",
                         "action": "publish", "reason": "clearer"})
        assert r.status_code == 303 and r.headers["location"].endswith("done=publish"), r.text
        from casemgr.casetypes import lifecycle
        from casemgr.db import read_session

        with read_session() as s:
            [active, baseline] = lifecycle.versions(s, "sop")
        assert active["is_active"] and baseline["number"] == 1
        r = c.post("/governance/processes/rollback", headers=HTML, follow_redirects=False,
                   data={"csrf_token": csrf, "kind": "sop", "version": baseline["version"], "reason": "back"})
        assert r.status_code == 303, r.text
        with read_session() as s:
            assert lifecycle.versions(s, "sop")[0]["version"] == baseline["version"]
        r = c.post("/governance/processes/rollback", headers=HTML,
                   data={"csrf_token": csrf, "kind": "nonsense", "version": "x"})
        assert r.status_code == 422 and "unknown process document" in r.text
