"""SOP links resolve only inside policies/sop/ (issue 18).

A task's SOP link was joined to the policies folder and its file shown to agents on the case page, so a task
could show `ai-policy.yaml`, a rules file, or anything reached with `..` or a symbolic link.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from web._helpers import login

from casemgr.casetypes.registry import load_registry
from casemgr.policyfile import PolicyFileError

POLICIES = Path(__file__).resolve().parents[2] / "policies"
GOOD = "sop: sop/complaint-acknowledge.md"
OUTSIDE = ["ai-policy.yaml", "org.yaml", "rules/common.yaml", "sop/../ai-policy.yaml", "policies/sop/../org.yaml",
           "/etc/passwd", "sop/escape.md", "sop/complaint-triage.txt"]


@pytest.fixture
def policies_copy(tmp_path: Path) -> Path:
    dst = tmp_path / "policies"
    shutil.copytree(POLICIES, dst)
    (dst / "sop" / "escape.md").symlink_to(dst / "ai-policy.yaml")  # a link that leads out of sop/
    (dst / "sop" / "complaint-triage.txt").write_text("not markdown")
    return dst


@pytest.mark.parametrize("link", OUTSIDE)
def test_case_types_refuse_sop_links_outside_policies_sop_with_file_line(policies_copy: Path, link: str) -> None:
    path = policies_copy / "case-types.yaml"
    text = path.read_text()
    line = next(i for i, t in enumerate(text.splitlines(), 1) if GOOD in t)
    path.write_text(text.replace(GOOD, f"sop: {link!r}"))
    with pytest.raises(PolicyFileError) as err:
        load_registry(policies_copy)
    [p] = err.value.problems
    assert (p.file.endswith("case-types.yaml"), p.line) == (True, line) and "policies/sop/" in p.message


def test_shipped_sop_links_still_load() -> None:
    reg = load_registry(POLICIES)
    assert reg.sop_text("sop/complaint-triage.md") and reg.sop_text("policies/sop/rules/fraud-check.md")


@pytest.mark.parametrize("link", OUTSIDE)
def test_api_refuses_a_task_whose_sop_leaves_policies_sop(agent_client, make_case, link: str) -> None:  # type: ignore[no-untyped-def]
    case_id = make_case()
    r = agent_client.post(f"/api/cases/{case_id}/tasks", json={"name": "Read this", "sop": link})
    assert r.status_code == 422 and "sop" in r.json()["detail"].lower(), r.text
    ok = agent_client.post(f"/api/cases/{case_id}/tasks", json={"name": "Triage", "sop": "sop/complaint-triage.md"})
    assert ok.status_code == 201, ok.text


def test_case_page_never_shows_a_file_outside_policies_sop(app, make_user, make_case) -> None:  # type: ignore[no-untyped-def]
    """A task stored before the check (or written around it) still shows nothing from outside policies/sop/."""
    from casemgr.cases.models import Task
    from casemgr.db import write_session

    case_id = make_case()
    with write_session() as s:
        for link in ("ai-policy.yaml", "sop/../org.yaml", "rules/common.yaml"):
            s.add(Task(case_id=case_id, name=f"leak {link}", kind="task", stage="intake", sop=link, source="user"))
        s.add(Task(case_id=case_id, name="fine", kind="task", stage="intake", sop="sop/complaint-triage.md",
                   source="user"))
    with TestClient(app) as browser:
        login(browser, *make_user("agent"))
        page = browser.get(f"/cases/{case_id}", headers={"Accept": "text/html"}).text
    assert "leak ai-policy.yaml" in page
    triage = (POLICIES / "sop" / "complaint-triage.md").read_text().splitlines()[0].lstrip("# ").strip()
    assert triage and triage in page
    for name in ("ai-policy.yaml", "org.yaml", "rules/common.yaml"):
        first = (POLICIES / name).read_text().splitlines()[0]
        assert len(first) > 20 and html.escape(first, quote=False) not in page and first not in page, name
