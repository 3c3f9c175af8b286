"""draft_reply through the policy choke point (issues 17 and 20): enrichment drafts a reply from the macros and
SOPs, the policy makes it a suggestion for the agent (never more), and a draft the policy refused is never shown."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from casemgr.ai.models import AICall
from casemgr.ai.providers import LocalProvider
from casemgr.ai.providers.base import AIError
from casemgr.ai.schemas import Draft, DraftContext
from casemgr.cases.schemas import CaseCreate, PartyIn
from casemgr.db import read_session, write_session
from casemgr.governance import enrich
from casemgr.governance.enums import DecisionOutcome, ReviewStatus
from casemgr.governance.models import AIDecision
from casemgr.governance.policy import parse_policy
from casemgr.governance.service import pending_suggestions
from casemgr.policyfile import PolicyFileError

from .util import POLICY_FILE, new_case, policy

TEXT = ("Hello, on March 3, 2024 my credit card was charged $35.00 twice at the grocery store. I dispute the "
        "second charge and want it removed from my statement. Thanks, Jane")


def _complaint(s: Any, subject: str = "Charged twice at the grocery store", description: str = TEXT) -> Any:
    from casemgr.cases import service as cases

    return cases.create_case(s, CaseCreate(case_type="complaint", subject=subject, description=description,
                                           party=PartyIn(name="Jane Doe", email="jane@example.org")), actor="user:test")


def _rows(case_id: int, kind: str) -> list[AIDecision]:
    with read_session() as s:
        return list(s.execute(select(AIDecision).where(AIDecision.case_id == case_id, AIDecision.kind == kind)
                              ).scalars())


def test_the_shipped_policy_suggests_drafts_to_agents_and_cannot_let_ai_send() -> None:
    shipped = parse_policy(POLICY_FILE.read_text(encoding="utf-8"))
    dp = shipped.decision("draft_reply")
    assert dp is not None and dp.mode == "suggest" and dp.owner == "agent"
    text = POLICY_FILE.read_text(encoding="utf-8")
    auto = text.replace("  draft_reply:\n    mode: suggest", "  draft_reply:\n    mode: auto\n    threshold: 0.9", 1)
    assert auto != text
    with pytest.raises(PolicyFileError) as err:
        parse_policy(auto, "ai-policy.yaml")
    lines = auto.splitlines()
    line = lines.index("  draft_reply:") + 2  # the `mode: auto` line under it (1-based)
    assert lines[line - 1].strip() == "mode: auto"
    assert f"ai-policy.yaml:{line}:" in str(err.value)
    assert "'auto' is not allowed for draft_reply; at most 'suggest'" in str(err.value)


def test_enrichment_drafts_a_reply_as_a_pending_suggestion_for_the_agent() -> None:
    with write_session() as s:
        case = _complaint(s)
        res = enrich.enrich_case(s, case.id, provider=LocalProvider())
        cid = case.id
    assert res.status == "ok"
    [row] = _rows(cid, "draft_reply")
    assert row.outcome == DecisionOutcome.SUGGESTED and row.review_status == ReviewStatus.PENDING
    assert row.owner_role == "agent" and row.confidence is not None and 0 < row.confidence <= 1
    text = row.proposed["text"]
    assert text.startswith("Dear Jane Doe,") and "Charged twice at the grocery store" not in text
    assert "$35.00" in text and "March 3, 2024" in text
    assert "macro complaint-acknowledge" in row.proposed["evidence"]
    assert row.rationale and "intent" in row.rationale
    with read_session() as s:
        [call] = s.execute(select(AICall).where(AICall.case_id == cid, AICall.capability == "draft_reply")).scalars()
        assert call.error is None and call.output["text"] == text and row.ai_call_id == call.id
        assert [d.id for d in pending_suggestions(s, cid, ["agent"]) if d.kind == "draft_reply"] == [row.id]


def test_a_policy_that_never_drafts_records_the_refusal_and_shows_nothing(client: Any, make_user: Any) -> None:
    def never(d: dict[str, Any]) -> None:
        d["decisions"]["draft_reply"] = {"mode": "never", "owner": "agent"}

    with write_session() as s:
        case = _complaint(s)
        enrich.enrich_case(s, case.id, provider=LocalProvider(), policy=policy(never))
        cid = case.id
    [row] = _rows(cid, "draft_reply")
    assert row.outcome == DecisionOutcome.REJECTED and row.review_status == ReviewStatus.NONE
    with read_session() as s:
        assert all(d.kind != "draft_reply" for d in pending_suggestions(s, cid))
    name, pw = make_user("agent")
    from tests.web._helpers import HTML, login

    login(client, name, pw)
    page = client.get(f"/cases/{cid}", headers=HTML).text
    assert "Dear Jane Doe" not in page and 'id="ai-draft-mark" hidden' in page


def test_kill_switch_suggest_only_keeps_the_draft_a_suggestion() -> None:
    with write_session() as s:
        case = _complaint(s)
        enrich.enrich_case(s, case.id, provider=LocalProvider(), policy=policy(kill_switch="suggest_only"))
        cid = case.id
    [row] = _rows(cid, "draft_reply")
    assert row.outcome == DecisionOutcome.SUGGESTED


def test_types_without_macros_and_spam_get_no_draft() -> None:
    with write_session() as s:
        from casemgr.cases import service as cases

        onb = cases.create_case(s, CaseCreate(case_type="onboarding", subject="New starter: Kim Park",
                                              fields={"employee_name": "Kim Park", "start_date": "2027-01-04"}),
                                actor="user:test")
        enrich.enrich_case(s, onb.id, provider=LocalProvider())
        spam = new_case(s, subject="You won!!!", description=(
            "Congratulations!!! You have WON a $1,000,000 prize. Click here http://win.example.com to claim your "
            "reward now, limited offer, act now, free money, unsubscribe"))
        enrich.enrich_case(s, spam.id, provider=LocalProvider())
        ids = (onb.id, spam.id)
    for cid in ids:
        assert _rows(cid, "draft_reply") == []
        with read_session() as s:
            assert not list(s.execute(select(AICall).where(AICall.case_id == cid,
                                                           AICall.capability == "draft_reply")).scalars())


class _DraftFails(LocalProvider):
    def draft_reply(self, text: str, context: DraftContext) -> Draft:
        raise AIError("the drafting model is down")


def test_a_failed_draft_is_recorded_but_leaves_the_rest_of_the_run_applied() -> None:
    with write_session() as s:
        case = _complaint(s)
        res = enrich.enrich_case(s, case.id, provider=_DraftFails())
        cid = case.id
    assert res.status == "ok" and res.retry_job_id is None
    assert _rows(cid, "draft_reply") == [] and _rows(cid, "summarize")
    with read_session() as s:
        [call] = s.execute(select(AICall).where(AICall.case_id == cid, AICall.capability == "draft_reply")).scalars()
        assert call.output is None and "drafting model is down" in (call.error or "")
