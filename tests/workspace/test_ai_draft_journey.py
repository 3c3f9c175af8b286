"""Journey in Debian's Chromium (issue 20 acceptance: "an AI draft that is edited and then sent"): the offline
provider drafts a reply for a demo complaint through the real enrichment pipeline; an agent opens the case, finds
the draft in the reply box marked as an AI draft with its confidence and evidence, edits it and sends it; the
recorded decision shows the edit distance on the case page, in the audit timeline and on the reviewer's page.
Screenshots under the test's tmp dir and test-artifacts/screenshots/."""

from __future__ import annotations

import re
from typing import Any

import pytest

from casemgr.ai.drafting.distance import edit_distance
from tests.web.test_browser import SHOTS, browser, login, server  # noqa: F401 - the served demo + Chromium
from tests.workspace.test_browser_journeys import in_data_dir, snap, wpage  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only, pytest.mark.timeout(300)]

# In the served data dir: one unassigned intake complaint enriched by the offline provider (the worker's job).
ENRICH_ONE = r'''
import json
from sqlalchemy import select
from casemgr.ai.providers.local import LocalProvider
from casemgr.cases.models import Case
from casemgr.db import write_session
from casemgr.governance import enrich
from casemgr.governance.models import AIDecision
with write_session() as s:
    case = s.execute(select(Case).where(Case.case_type == "complaint", Case.stage == "intake",
                                        Case.status == "open", Case.party_id.is_not(None))
                     .order_by(Case.id).limit(1)).scalar_one()
    res = enrich.enrich_case(s, case.id, provider=LocalProvider())
    row = s.execute(select(AIDecision).where(AIDecision.case_id == case.id, AIDecision.kind == "draft_reply")
                    ).scalar_one()
    print(json.dumps({"case": case.id, "reference": case.reference, "decision": row.id, "outcome": row.outcome,
                      "text": row.proposed["text"], "status": res.status}))
'''

DECISION = r'''
import json, sys
from casemgr.db import read_session
from casemgr.governance.models import AIDecision
with read_session() as s:
    d = s.get(AIDecision, int(sys.argv[1]))
    print(json.dumps({"status": d.review_status, "edit_distance": d.edit_distance, "by": d.reviewed_by}))
'''


def test_agent_edits_and_sends_the_ai_draft(wpage: Any, browser: Any, server: dict[str, Any]) -> None:  # noqa: F811
    from playwright.sync_api import expect

    seeded = in_data_dir(server, ENRICH_ONE)
    assert seeded["status"] == "ok" and seeded["outcome"] == "suggested"
    draft = seeded["text"]
    login(wpage, server, "agent")
    wpage.goto(f"/cases/{seeded['case']}")
    mark = wpage.locator("#ai-draft-mark")
    expect(mark).to_be_visible()
    expect(mark).to_have_text(re.compile("AI draft"))
    box = wpage.locator("#reply-body")
    expect(box).to_have_value(draft)
    expect(wpage.locator("#ai-draft-info")).to_contain_text(re.compile(r"confidence \d+%"))
    expect(wpage.locator("#ai-draft-info")).to_contain_text("Evidence: intent ")
    box.scroll_into_view_if_needed()
    snap(wpage, "ai-draft-in-reply-box")
    wpage.screenshot(path=str(SHOTS / "ai-draft-in-reply-box.png"))

    # The agent edits: a sentence of their own before the sign-off, and the generic closing line dropped.
    edited = draft.replace("Kind regards,", "I will call you tomorrow morning to go through it with you.\n\n"
                                            "Kind regards,")
    edited = re.sub(r" If you have statements[^\n]*", "", edited)
    assert edited != draft
    box.fill(edited)
    wpage.get_by_role("button", name="Send reply").click()
    expect(wpage.locator("#notice")).to_have_text("Reply sent.")
    expect(wpage.locator("#thread li.outbound").last).to_contain_text("I will call you tomorrow morning")
    expect(mark).to_be_hidden()  # the draft is used up: the reply box is empty again
    expect(box).to_have_value("")

    recorded = in_data_dir(server, DECISION, str(seeded["decision"]))
    expected = edit_distance(draft, edited)
    assert recorded["status"] == "accepted" and recorded["by"] == "user:agent"
    assert recorded["edit_distance"] == expected and 0 < expected < 0.5
    shown = f"sent with {expected * 100:.0f}% changed (edit distance {expected:.2f})"
    expect(wpage.locator(f"#suggestion-{seeded['decision']} .edit-distance")).to_have_text(shown)
    wpage.locator(f"#suggestion-{seeded['decision']}").scroll_into_view_if_needed()
    snap(wpage, "ai-draft-sent")
    wpage.click("#tab-audit")
    expect(wpage.locator('#timeline li[data-action="ai.draft_sent"]')).to_contain_text(
        f"AI draft reply edited and sent by agent, {expected * 100:.0f}% changed")

    # The reviewer sees how much agents change drafts.
    ctx = browser.new_context(base_url=server["base"], viewport={"width": 1366, "height": 900})
    rev = ctx.new_page()
    try:
        login(rev, server, "reviewer")
        rev.goto("/review")
        expect(rev.locator("#drafts-sent")).to_have_text("1")
        row = rev.locator(f'#drafts-table tr[data-decision="{seeded["decision"]}"]')
        expect(row).to_contain_text(seeded["reference"])
        expect(row.locator(".edit-distance")).to_contain_text(f"{expected:.2f}")
        rev.locator("#draft-edits").scroll_into_view_if_needed()
        rev.shots = wpage.shots  # type: ignore[attr-defined]
        snap(rev, "ai-draft-review")
        rev.screenshot(path=str(SHOTS / "ai-draft-review.png"))
    finally:
        ctx.close()
