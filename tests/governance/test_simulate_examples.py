"""Simulation of a draft policy (issue 21): per kind AND per category, how many outcomes change, with up to 5
example cases for each change; checked against a population whose outcomes we set by hand."""

from __future__ import annotations

from casemgr.db import read_session, write_session
from casemgr.governance import lifecycle, service
from casemgr.governance.decide import AIOutput
from casemgr.governance.policy import active_policy

from .util import new_case, policy_text


def _classify(s, category: str, confidence: float) -> int:  # type: ignore[no-untyped-def]
    case = new_case(s, subject=f"{category} {confidence}", route=False)
    service.record_decision(s, case, AIOutput(kind="classify", field="category", value={"category": category},
                                              confidence=confidence, model_version="m-1", provider="local"),
                            policy=active_policy(), route=False)
    return int(case.id)


def test_simulation_counts_changes_per_kind_and_category_with_five_examples() -> None:
    # Shipped: classify auto at 0.6, credit_reporting at 0.7. Candidate: credit_reporting 0.8.
    with write_session() as s:
        moved = [_classify(s, "credit_reporting", 0.75) for _ in range(7)]   # 0.75: applied -> suggested
        kept = [_classify(s, "credit_reporting", 0.85) for _ in range(2)]    # stays applied
        card = [_classify(s, "credit_card", 0.75) for _ in range(3)]         # other category: unchanged
    draft = policy_text(lambda d: d["decisions"]["classify"]["thresholds_by_category"].update(credit_reporting=0.8))
    with read_session() as s:
        sim = lifecycle.simulate(s, draft, last_n=100)
    assert sim["decisions"] == 12 and sim["moves"] == {"applied->suggested": 7}
    assert sim["per_kind"]["classify"]["changed"] == 7
    assert sim["per_category"]["credit_reporting"]["changed"] == 7
    assert sim["per_category"]["credit_reporting"]["before"]["applied"] == 9
    assert sim["per_category"]["credit_reporting"]["after"]["applied"] == 2
    assert sim["per_category"]["credit_card"]["changed"] == 0
    [change] = sim["changed"]
    assert (change["kind"], change["category"], change["move"], change["count"]) == (
        "classify", "credit_reporting", "applied->suggested", 7)
    # Five examples, the newest cases first, all among the ones that moved.
    assert change["examples"] == list(reversed(moved))[:5]
    assert not set(change["examples"]) & set(kept + card)
    assert set(sim["references"]) == set(change["examples"]) and all(sim["references"].values())


def test_simulation_of_an_unchanged_policy_lists_no_changes() -> None:
    with write_session() as s:
        _classify(s, "credit_card", 0.9)
    with read_session() as s:
        sim = lifecycle.simulate(s, policy_text(), last_n=10)
    assert sim["changed"] == [] and sim["per_category"]["credit_card"]["changed"] == 0
