"""Workspace journeys in Debian's Chromium (Playwright, never a downloaded browser) against uvicorn on a
`casemgr demo` data dir, each with a screenshot under the test's tmp dir: density at 1366 x 900, a
keyboard-only New-view journey (claim -> reply -> transition), a bulk assign where 2 of 20 cases changed
meanwhile, a merge, a macro, and a mention that notifies a colleague."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.web.test_browser import CHROMIUM, browser, login, server  # noqa: F401 - the served demo + Chromium

pytestmark = [pytest.mark.browser, pytest.mark.sqlite_only, pytest.mark.timeout(300)]


@pytest.fixture
def wpage(browser: Any, server: dict[str, Any], tmp_path: Path) -> Iterator[Any]:  # noqa: F811
    """A 1366 x 900 page that fails the test on a JavaScript error or a dialog."""
    ctx = browser.new_context(base_url=server["base"], viewport={"width": 1366, "height": 900})
    ctx.set_default_timeout(15000)
    pg = ctx.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"JS error: {e}"))
    pg.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
    pg.shots = tmp_path  # type: ignore[attr-defined]
    yield pg
    ctx.close()
    assert problems == []


def snap(page: Any, name: str) -> Path:
    path = Path(page.shots) / f"{name}.png"
    page.screenshot(path=str(path), full_page=False)
    assert path.stat().st_size > 5000
    return path


def in_data_dir(srv: dict[str, Any], code: str, *args: str) -> Any:
    """Run Python against the served database (another writer, like a colleague's browser)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEMGR_")}
    env.update({"CASEMGR_DATA_DIR": str(srv["data"]), "CASEMGR_SECRET_KEY": "browser-test-secret"})
    out = subprocess.run([sys.executable, "-c", code, *args], env=env, check=True, capture_output=True, text=True,
                         timeout=60)
    return json.loads(out.stdout.strip().splitlines()[-1])


CHANGE_MEANWHILE = r'''
import json, sys
from casemgr.cases import service
from casemgr.db import write_session
with write_session() as s:
    for cid in map(int, sys.argv[1:]):
        c = service.get_case(s, cid)
        service.add_note(s, cid, "checked the account meanwhile", "user:lead", c.version)
print(json.dumps("ok"))
'''


def test_twenty_rows_fit_a_1366_by_900_screen(wpage: Any, server: dict[str, Any]) -> None:  # noqa: F811
    login(wpage, server, "agent")
    wpage.goto("/queue?view=all")
    visible = wpage.evaluate("""() => Array.from(document.querySelectorAll('#queue-table tbody tr'))
        .filter(r => r.getBoundingClientRect().bottom <= window.innerHeight).length""")
    snap(wpage, "queue-1366x900")
    assert visible >= 20, f"only {visible} case rows visible at 1366x900"
    counts = wpage.locator("nav.views a .count")
    assert counts.count() >= 6
    assert "overdue" in wpage.locator("#queue-table").inner_text() or "due in" in wpage.locator("#queue-table").inner_text()


def test_keyboard_only_new_view_claim_reply_transition(wpage: Any, server: dict[str, Any]) -> None:  # noqa: F811
    from playwright.sync_api import expect

    login(wpage, server, "agent")
    wpage.goto("/queue?view=new&type=complaint")
    kb = wpage.keyboard
    kb.press("?")
    expect(wpage.locator("#shortcut-help")).to_be_visible()
    snap(wpage, "kb-help")
    kb.press("Escape")
    expect(wpage.locator("#shortcut-help")).to_be_hidden()
    kb.press("j")
    row = wpage.locator("#queue-table tbody tr.kb-current")
    expect(row).to_have_count(1)
    case_id = row.get_attribute("data-case-id")
    kb.press("a")  # claim: htmx swaps the row, the keyboard stays on it
    expect(wpage.locator(f"#case-row-{case_id} td.assignee")).to_have_text("agent")
    expect(wpage.locator(f"#case-row-{case_id}")).to_have_class(re.compile("kb-current"))
    snap(wpage, "kb-claimed")
    kb.press("o")
    wpage.wait_for_url(re.compile(rf".*/cases/{case_id}$"))
    expect(wpage.locator("#case-owner")).to_contain_text("agent")
    kb.press("r")
    expect(wpage.locator("#reply-body")).to_be_focused()
    kb.type("Thank you, we are on it and will answer today. j k o")  # shortcuts do not fire while typing
    assert wpage.url.endswith(f"/cases/{case_id}")
    kb.press("Control+Enter")
    expect(wpage.locator("#notice")).to_have_text("Reply sent.")
    expect(wpage.locator("#thread")).to_contain_text("we are on it")
    kb.press("s")
    expect(wpage.locator("#transition-reason")).to_be_focused()
    kb.type("acknowledged by phone")
    kb.press("Tab")
    kb.press("Enter")
    expect(wpage.locator("#notice")).to_have_text("Stage changed.")
    snap(wpage, "kb-transitioned")
    wpage.goto(f"/cases/{case_id}?tab=audit")
    expect(wpage.locator("#timeline")).to_contain_text("acknowledged by phone")


def test_bulk_assign_two_of_twenty_changed_meanwhile(wpage: Any, server: dict[str, Any]) -> None:  # noqa: F811
    from playwright.sync_api import expect

    login(wpage, server, "lead")
    wpage.goto("/queue?view=new&sort=created")
    boxes = wpage.locator('#queue-table tbody input[name="case"]')
    assert boxes.count() >= 20
    ids = []
    for i in range(20):
        boxes.nth(i).check()
        ids.append(boxes.nth(i).get_attribute("value").split(":")[0])
    expect(wpage.locator("#bulk-count")).to_have_text("20 selected")
    in_data_dir(server, CHANGE_MEANWHILE, ids[4], ids[11])  # two colleagues' edits land first
    wpage.select_option("#bulk-action", "assign")
    wpage.select_option("#bulk-assignee", "agent")
    snap(wpage, "bulk-selected")
    wpage.click("#bulk-apply")
    notice = wpage.locator("#bulk-notice")
    expect(notice).to_contain_text("18 changed, 2 skipped: changed by someone else")
    snap(wpage, "bulk-result")
    wpage.goto("/queue?view=all&assignee=agent&sort=created")
    text = wpage.locator("#queue-table").inner_text()
    assert text.count("agent") >= 18


def test_merge_duplicates(wpage: Any, server: dict[str, Any]) -> None:  # noqa: F811
    from playwright.sync_api import expect

    login(wpage, server, "lead")
    wpage.goto("/queue?view=all&type=complaint&stage=triage&sort=created")
    boxes = wpage.locator('#queue-table tbody input[name="case"]')
    picked = [boxes.nth(i).get_attribute("value").split(":")[0] for i in range(2)]
    boxes.nth(0).check()
    boxes.nth(1).check()
    wpage.select_option("#bulk-action", "merge")
    wpage.click("#bulk-apply")
    expect(wpage.locator("#bulk-notice")).to_contain_text("2 changed")
    survivor, dup = sorted(picked, key=int)
    wpage.goto(f"/cases/{dup}")
    expect(wpage.locator("#merged-banner")).to_contain_text("merged into")
    wpage.goto(f"/cases/{survivor}?tab=audit")
    expect(wpage.locator('#timeline li[data-action="case.merged"]')).to_contain_text("merged in")
    snap(wpage, "merged")


def test_macro_with_edited_reply(wpage: Any, server: dict[str, Any]) -> None:  # noqa: F811
    from playwright.sync_api import expect

    login(wpage, server, "agent")
    wpage.goto("/queue?view=all&type=complaint&stage=intake")
    wpage.locator("#queue-table tbody a.case-link").first.click()
    wpage.wait_for_url(re.compile(r".*/cases/\d+$"))
    wpage.keyboard.press("m")
    expect(wpage.locator("#macro-select")).to_be_focused()
    wpage.select_option("#macro-select", "complaint-acknowledge")
    box = wpage.locator("#macro-reply")
    expect(box).to_be_focused()
    expect(box).to_have_value(re.compile(r"^Dear .+,"))
    expect(wpage.locator("#macro-effects")).to_contain_text("moves the case to triage")
    box.press("End")
    box.fill(box.input_value().replace("Kind regards", "PS: our phone line is open until 8pm.\n\nKind regards"))
    snap(wpage, "macro-preview")
    wpage.click("#macro-apply")
    expect(wpage.locator("#notice")).to_have_text("Macro applied.")
    expect(wpage.locator("#case-stage")).to_have_text(re.compile("triage", re.I))
    expect(wpage.locator("#thread")).to_contain_text("our phone line is open until 8pm")
    snap(wpage, "macro-applied")


def test_mention_notifies_a_colleague(wpage: Any, browser: Any, server: dict[str, Any]) -> None:  # noqa: F811
    from playwright.sync_api import expect

    login(wpage, server, "agent")
    wpage.goto("/queue?view=all&type=contract")
    wpage.locator("#queue-table tbody a.case-link").first.click()
    wpage.wait_for_url(re.compile(r".*/cases/\d+$"))
    case_url = wpage.url
    wpage.keyboard.press("n")
    wpage.keyboard.type("@lead can you approve the renewal terms today?")
    wpage.keyboard.press("Control+Enter")
    expect(wpage.locator("#notice")).to_have_text("Note added.")
    expect(wpage.locator("#thread .mention").last).to_have_text("@lead")
    lead_ctx = browser.new_context(base_url=server["base"], viewport={"width": 1366, "height": 900})
    lead = lead_ctx.new_page()
    try:
        login(lead, server, "lead")
        expect(lead.locator("#bell-count")).to_have_text(re.compile(r"^[1-9]\d*$"))
        lead.shots = wpage.shots  # type: ignore[attr-defined]
        snap(lead, "mention-bell")
        lead.locator("#bell").click()
        item = lead.locator('#notification-list li[data-kind="mention"]').first
        expect(item).to_contain_text("agent mentioned you")
        item.locator("a").click()
        assert lead.url.split("#")[0] == case_url
    finally:
        lead_ctx.close()
