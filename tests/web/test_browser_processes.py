"""Browser journey (issue 22): a process owner edits an SLA in a case type, a second lead approves it (four eyes
is on in the demo), the model view shows the change, and a case that was already running keeps its old SLA.
Debian Chromium through Playwright, the app served by uvicorn on 127.0.0.1 (fixtures of test_browser.py)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from typing import Any

import pytest

from tests.web.test_browser import browser, login, page, server, shot  # noqa: F401 - fixtures reused

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only, pytest.mark.timeout(300)]

NEW_CASE = r'''
import json
from casemgr.cases import service
from casemgr.cases.schemas import CaseCreate
from casemgr.db import write_session
with write_session() as s:
    c = service.create_case(s, CaseCreate(case_type="complaint", subject="Opened during the journey"),
                            actor="system:journey")
    print(json.dumps({"id": c.id, "stage": c.stage, "sla_hours": c.sla_hours, "version": c.case_type_version}))
'''


def _new_case(served: dict[str, Any]) -> dict[str, Any]:
    """A complaint opened in the served database (by a separate process, as intake would)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEMGR_")}
    env.update({"CASEMGR_DATA_DIR": str(served["data"]), "CASEMGR_SECRET_KEY": "browser-test-secret",
                "CASEMGR_AI_INLINE": "false"})
    out = subprocess.run([sys.executable, "-c", NEW_CASE], env=env, check=True, capture_output=True, text=True,
                         timeout=60)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _intake_sla(pg: Any) -> str:
    hours = pg.locator('#stage-intake tspan.sla').get_attribute("data-hours")
    assert hours
    return str(hours)


def test_journey_process_owner_changes_an_sla_and_running_cases_keep_theirs(page: Any, server: dict[str, Any]  # noqa: F811
                                                                          ) -> None:
    from playwright.sync_api import expect

    running = _new_case(server)
    assert running["stage"] == "intake"
    old_hours = f"{running['sla_hours']:g}"
    new_hours = "3" if old_hours != "3" else "5"

    # The process owner looks at the running case and the model it runs on.
    login(page, server, "governance")
    page.goto(f"/cases/{running['id']}")
    expect(page.locator("#case-sla-target")).to_have_text(f"{old_hours} h")
    page.locator("#model-link").click()
    page.wait_for_url(re.compile(r".*/process/model/complaint\?.*"))
    assert _intake_sla(page) == old_hours
    shot(page, "process-model-before")

    # Edit the intake SLA on the processes page and submit it with a reason.
    page.goto("/governance/processes")
    form = page.locator("#sla-form-complaint")
    form.locator("#sla-complaint-intake").fill(new_hours)
    reason = f"Acknowledge complaints within {new_hours} hours"
    form.get_by_label("Reason (required)").fill(reason)
    form.get_by_role("button", name="Submit for approval").click()
    expect(page.locator("#notice")).to_contain_text("a second governance lead must approve")
    request = page.locator("#change-requests article.change-request", has_text=reason)
    expect(request).to_have_count(1)
    rid = (request.get_attribute("id") or "").removeprefix("change-")
    expect(request.locator(".diff")).to_contain_text(f"hours: {new_hours}", use_inner_text=False)
    expect(page.locator(f"#approve-{rid}")).to_have_count(0)  # four eyes: not her own request
    expect(page.locator(f"#why-not-{rid}")).to_contain_text("different governance lead")
    shot(page, "process-sla-requested")

    # A second lead approves; the new version is in force.
    page.context.clear_cookies()
    login(page, server, "governance2")
    page.goto("/governance/processes")
    # Before approving, the second lead opens the model view of what the request would publish.
    page.locator(f"#change-{rid}-model-complaint").click()
    expect(page.locator("#change-preview")).to_be_visible()
    expect(page.locator("#stage-intake tspan.sla")).to_contain_text(f"was {old_hours} h")
    shot(page, "process-change-preview")
    page.goto("/governance/processes")
    page.locator(f"#approve-comment-{rid}").fill("Agreed")
    page.locator(f"#approve-{rid}").click()
    expect(page.locator("#notice")).to_contain_text("Approved and published")
    expect(page.locator("#versions-case-types")).to_contain_text(reason)
    shot(page, "process-sla-approved")

    # The model view shows the new SLA, marked as changed against the version before.
    page.goto("/process/models")
    page.locator("#model-link-complaint").click()
    page.wait_for_url(re.compile(r".*/process/model/complaint$"))
    assert _intake_sla(page) == new_hours
    page.get_by_label("Compare with").select_option(index=2)  # the previous version (v1)
    page.get_by_role("button", name="Show").click()
    expect(page.locator("#stage-intake")).to_have_class(re.compile(r"\bchanged\b"))
    expect(page.locator("#stage-intake tspan.sla")).to_contain_text(f"was {old_hours} h")
    expect(page.locator("#model-changes")).to_contain_text(f"intake: SLA {old_hours} h → {new_hours} h")
    shot(page, "process-model-after")

    # The running case keeps its SLA and the version it started on; a new case gets the new SLA.
    page.goto(f"/cases/{running['id']}")
    expect(page.locator("#case-sla-target")).to_have_text(f"{old_hours} h")
    expect(page.locator("#model-link")).to_contain_text("process v1")
    shot(page, "process-running-case-keeps-sla")
    fresh = _new_case(server)
    assert f"{fresh['sla_hours']:g}" == new_hours and fresh["version"] != running["version"]
    page.goto(f"/cases/{fresh['id']}")
    expect(page.locator("#case-sla-target")).to_have_text(f"{new_hours} h")
    expect(page.locator("#model-link")).to_contain_text("process v2")
