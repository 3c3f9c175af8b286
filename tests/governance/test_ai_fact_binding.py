"""AI facts cannot bypass the policy through rules (issue 17), and capabilities belong to a case type.

The exact case seen in review: urgency "high" at confidence 0.68 passes classify's threshold (0.6), and
the rule complaint-high-urgency then turned it into priority high, although the policy asks set_priority
for 0.8. Now the rule's consequence is bound by set_priority's entry: held back, and filed as a suggestion
to set_priority's owner (lead)."""

from __future__ import annotations

from sqlalchemy import select

from casemgr.cases.models import Case
from casemgr.db import read_session, write_session
from casemgr.governance import enrich
from casemgr.governance.models import AIDecision

from .util import StubProvider, new_case


def _decisions(case_id: int) -> list[AIDecision]:
    with read_session() as s:
        return list(s.execute(select(AIDecision).where(AIDecision.case_id == case_id).order_by(AIDecision.id)).scalars())


def _enrich(urgency_conf: float, urgency: str = "high") -> tuple[Case, list[AIDecision]]:
    with write_session() as s:
        case = new_case(s, description="They keep charging my card and the fees pile up.")
        assert case.priority == "normal"
        enrich.enrich_case(s, case.id, provider=StubProvider(urgency=urgency, urgency_conf=urgency_conf))
        cid = case.id
    with read_session() as s:
        got = s.get(Case, cid)
        assert got is not None
        return got, _decisions(cid)


def test_urgency_at_068_sets_urgency_but_not_priority_through_the_rule() -> None:
    case, rows = _enrich(0.68)
    assert case.urgency == "high"  # classify's own threshold (0.6) let the fact through
    assert case.priority == "normal"  # ... but neither set_priority nor the rule may raise the priority
    held = (case.rules_result or {}).get("bound_by_policy") or []
    assert [h["rule"] for h in held] == ["complaint-high-urgency"]
    assert held[0]["ai_facts"] == {"urgency": 0.68} and held[0]["threshold"] == 0.8
    prio = [d for d in rows if d.kind == "set_priority"]
    assert prio and all(d.outcome == "suggested" and d.owner_role == "lead" for d in prio)
    assert all(d.proposed == {"priority": "high"} for d in prio)
    # One open suggestion for the lead, not one from the AI and another from the rule.
    assert len([d for d in prio if d.review_status == "pending"]) == 1


def test_urgency_above_set_priority_threshold_raises_priority() -> None:
    case, rows = _enrich(0.85)
    assert case.urgency == "high" and case.priority == "high"
    assert not (case.rules_result or {}).get("bound_by_policy")


def test_a_human_set_urgency_is_not_bound() -> None:
    """Provenance counts only while the case holds the AI's value: a person's urgency drives the rule freely."""
    from casemgr.cases.change import change
    from casemgr.cases.routing import route_case

    case, _ = _enrich(0.68, urgency="low")
    with write_session() as s:
        with change(s, case.id, case.version, "user:lead", "case.updated") as ch:
            ch.case.urgency = "high"
        route_case(s, ch.case, actor="user:lead", reason="urgency changed")
        cid = case.id
    with read_session() as s:
        got = s.get(Case, cid)
        assert got is not None and got.priority == "high"


def test_contracts_get_no_text_urgency() -> None:
    """Capabilities belong to a case type: words like 'attorney' and 'damages' never make a contract urgent."""
    with write_session() as s:
        case = new_case(s, case_type="contract", subject="Master services agreement",
                        description="The attorney reviewed damages, indemnity and unlimited liability clauses.")
        enrich.enrich_case(s, case.id, provider=StubProvider(urgency="critical", urgency_conf=0.99))
        cid = case.id
    rows = _decisions(cid)
    with read_session() as s:
        got = s.get(Case, cid)
        assert got is not None
        assert got.priority != "urgent"
        assert (got.ai or {})["classification"]["urgency"] != "critical"  # from dates (none known), not words
    assert not [d for d in rows if d.kind == "classify" and d.field == "urgency" and d.proposed.get("urgency") == "critical"]


def test_a_next_step_the_policy_rejected_is_not_shown_as_a_suggestion() -> None:
    """'closed — the matter is settled' on a live dispute: close_case is `never`, so the case page must not show it."""
    with write_session() as s:
        case = new_case(s, description="They refuse to fix my account, this is still not resolved.")
        enrich.enrich_case(s, case.id, provider=StubProvider(action="closed", action_conf=0.9))
        cid = case.id
    rows = _decisions(cid)
    assert [d.outcome for d in rows if d.kind == "close_case"] == ["rejected"]  # kept in the decision history
    with read_session() as s:
        got = s.get(Case, cid)
        assert got is not None and got.status != "closed"
        assert (got.ai or {})["suggestion"]["action"] is None
