"""Accepting an AI suggestion to close a case type with resolution codes: the accepting person picks the root
cause (API field and a select beside Accept); without one the suggestion is refused with 422 and stays pending."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from casemgr.cases.models import Case
from casemgr.db import read_session, write_session
from casemgr.governance import service
from casemgr.governance.decide import AIOutput
from casemgr.governance.models import AIDecision
from tests.governance.util import new_case, policy
from tests.web._helpers import HTML


def _close_suggestion() -> tuple[int, int]:
    """A complaint and a pending close_case suggestion owned by agents (the shipped policy says `never`)."""
    suggest = policy(lambda d: d["decisions"]["close_case"].update(mode="suggest", owner="agent"))
    with write_session() as s:
        case = new_case(s)
        row = service.record_decision(s, case, AIOutput(kind="close_case", value={"to_stage": "closed"},
                                                        confidence=0.95, rationale="customer withdrew"),
                                      policy=suggest)
        assert row.outcome == "suggested", (row.outcome, row.reason)
        return int(case.id or 0), int(row.id or 0)


def test_api_accept_close_needs_a_valid_resolution_code(app, api_key) -> None:  # type: ignore[no-untyped-def]
    case_id, did = _close_suggestion()
    agent = TestClient(app, headers={"X-API-Key": api_key("agent")})
    r = agent.post(f"/api/ai/decisions/{did}/accept", json={})
    assert r.status_code == 422 and "resolution code" in r.text
    r = agent.post(f"/api/ai/decisions/{did}/accept", json={"resolution_code": "no_such_code"})
    assert r.status_code == 422 and "unknown resolution code" in r.text
    with read_session() as s:
        assert s.get(AIDecision, did).review_status == "pending"
        assert s.get(Case, case_id).stage != "closed"
    r = agent.post(f"/api/ai/decisions/{did}/accept", json={"resolution_code": "billing_error"})
    assert r.status_code == 200, r.text
    with read_session() as s:
        case = s.get(Case, case_id)
        assert (case.stage, case.resolution_code) == ("closed", "billing_error")
        assert s.get(AIDecision, did).review_status == "accepted"


def test_case_page_offers_the_codes_beside_accept(web_client) -> None:  # type: ignore[no-untyped-def]
    case_id, did = _close_suggestion()
    c, csrf = web_client("agent")
    page = c.get(f"/cases/{case_id}", headers=HTML).text
    form = page.split(f'action="/cases/{case_id}/ai/{did}/accept"')[1].split("</form>")[0]
    assert f'id="accept-resolution-{did}"' in form and 'name="resolution_code" required' in form
    assert 'value="billing_error"' in form
    # Submitted without a code (a browser without `required`): a clear message on the page, nothing changes.
    r = c.post(f"/cases/{case_id}/ai/{did}/accept", data={"csrf_token": csrf}, headers=HTML)
    assert r.status_code == 422 and re.search(r"needs a resolution code", r.text)
    r = c.post(f"/cases/{case_id}/ai/{did}/accept", data={"csrf_token": csrf, "resolution_code": "billing_error"},
               headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    with read_session() as s:
        assert s.get(Case, case_id).resolution_code == "billing_error"
