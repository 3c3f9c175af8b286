"""decide(): every mode x confidence boundary x kill switch, limits, validity, deterministic sampling."""

from __future__ import annotations

import itertools

import pytest

from casemgr.governance.decide import AIOutput, CaseFacts, decide, sample_hit

from .util import policy

FACTS = CaseFacts(id=7, case_type="complaint", stage="intake", category=None, amount=50.0,
                  transitions=("triage", "closed"), final_stages=("closed",),
                  categories=("credit_card", "credit_reporting", "debt_collection", "mortgages_and_loans",
                              "retail_banking"), queues=("default", "escalations"))

THRESHOLD = 0.8
MODES = ("auto", "suggest", "never")
SWITCHES = ("normal", "suggest_only", "off")
# Just below, exactly at, just above the threshold, the extremes, and a missing confidence.
CONFIDENCES = (None, 0.0, THRESHOLD - 1e-9, THRESHOLD, THRESHOLD + 1e-9, 1.0)


def _policy(mode: str, switch: str, sample_rate: float = 0.0):  # type: ignore[no-untyped-def]
    def mutate(d):  # type: ignore[no-untyped-def]
        d["decisions"]["set_priority"] = {"mode": mode, "owner": "lead",
                                          **({"threshold": THRESHOLD} if mode != "never" else {})}
        d["review"]["sample_rate"] = sample_rate
    return policy(mutate, kill_switch=switch)


def _expected(mode: str, switch: str, conf: float | None) -> str:
    if switch == "off" or mode == "never":
        return "rejected"
    if switch == "suggest_only" or mode == "suggest":
        return "suggested"
    return "applied" if conf is not None and conf >= THRESHOLD else "suggested"


@pytest.mark.parametrize(("mode", "switch"), list(itertools.product(MODES, SWITCHES)))
def test_mode_confidence_killswitch_matrix(mode: str, switch: str) -> None:
    pol = _policy(mode, switch)
    for conf in CONFIDENCES:
        out = decide(FACTS, AIOutput(kind="set_priority", value={"priority": "high"}, confidence=conf), pol)
        assert out.status == _expected(mode, switch, conf), (mode, switch, conf, out)
        assert out.policy_version == pol.version
        if out.status == "suggested":
            assert out.owner == "lead"  # a suggestion always names its owner role
        if mode == "suggest":
            assert out.status != "applied"  # a suggestion is never auto-applied, at any confidence
        if mode == "never":
            assert out.status == "rejected"  # never is never offered


def test_threshold_resolution_category_beats_case_type_beats_default() -> None:
    def mutate(d):  # type: ignore[no-untyped-def]
        d["decisions"]["classify"] = {"mode": "auto", "owner": "agent", "threshold": 0.5,
                                      "thresholds_by_category": {"credit_reporting": 0.9},
                                      "thresholds_by_case_type": {"complaint": 0.7}}
    pol = policy(mutate)
    cat = lambda c, conf: AIOutput(kind="classify", field="category", value={"category": c}, confidence=conf)  # noqa: E731
    assert decide(FACTS, cat("credit_reporting", 0.85), pol).status == "suggested"
    assert decide(FACTS, cat("credit_reporting", 0.9), pol).status == "applied"
    assert decide(FACTS, cat("credit_card", 0.69), pol).status == "suggested"
    assert decide(FACTS, cat("credit_card", 0.7), pol).status == "applied"
    contract = CaseFacts(id=1, case_type="contract", stage="request")
    urg = AIOutput(kind="classify", field="urgency", value={"urgency": "high"}, confidence=0.55)
    assert decide(contract, urg, pol).status == "applied"  # default 0.5 for a type without an override


def test_below_threshold_reject_option() -> None:
    def mutate(d):  # type: ignore[no-untyped-def]
        d["decisions"]["set_priority"].update(below_threshold="reject")
    pol = policy(mutate)
    out = decide(FACTS, AIOutput(kind="set_priority", value={"priority": "low"}, confidence=0.1), pol)
    assert out.status == "rejected" and "below threshold" in out.reason


def test_refund_limit_turns_auto_into_suggestion_for_finance() -> None:
    def mutate(d):  # type: ignore[no-untyped-def]
        d["decisions"]["approve_refund"] = {"mode": "auto", "owner": "finance", "threshold": 0.5}
        d["limits"]["max_refund_amount"] = 100
    pol = policy(mutate)
    small = decide(FACTS, AIOutput(kind="approve_refund", value={"amount": 100}, confidence=0.99), pol)
    big = decide(FACTS, AIOutput(kind="approve_refund", value={"amount": 100.01}, confidence=0.99), pol)
    assert small.status == "applied"
    assert big.status == "suggested" and big.owner == "finance" and "exceeds" in big.reason


def test_default_policy_bounds_injected_close_and_refund() -> None:
    pol = policy()
    close = decide(FACTS, AIOutput(kind="close_case", value={"to_stage": "closed"}, confidence=1.0), pol)
    refund = decide(FACTS, AIOutput(kind="approve_refund", value={"amount": 10000}, confidence=1.0), pol)
    assert close.status == "rejected"
    assert refund.status == "suggested" and refund.owner == "finance"


@pytest.mark.parametrize(("output", "why"), [
    (AIOutput(kind="classify", field="category", value={"category": "pizza"}, confidence=1.0), "not one of"),
    (AIOutput(kind="classify", field="priority", value={"priority": "high"}, confidence=1.0), "cannot set"),
    (AIOutput(kind="set_priority", value={"priority": "mega"}, confidence=1.0), "priority"),
    (AIOutput(kind="route_queue", value={"queue": "nowhere"}, confidence=1.0), "unknown queue"),
    (AIOutput(kind="advance_stage", value={"to_stage": "resolution"}, confidence=1.0), "cannot move"),
    (AIOutput(kind="approve_refund", value={"amount": -5}, confidence=1.0), "not positive"),
    (AIOutput(kind="set_priority", value={"priority": "high"}, confidence=1.5), "outside"),
    (AIOutput(kind="launch_rockets", value={}, confidence=1.0), "not governed"),
])
def test_invalid_outputs_are_rejected(output: AIOutput, why: str) -> None:
    def mutate(d):  # type: ignore[no-untyped-def]
        for k in ("route_queue", "advance_stage", "approve_refund"):
            d["decisions"][k] = {"mode": "auto", "owner": d["decisions"][k]["owner"], "threshold": 0.1}
    out = decide(FACTS, output, policy(mutate))
    assert out.status == "rejected" and why in out.reason


def test_closed_case_gets_nothing() -> None:
    closed = CaseFacts(id=3, case_type="complaint", stage="closed", status="closed")
    out = decide(closed, AIOutput(kind="set_priority", value={"priority": "high"}, confidence=1.0), policy())
    assert out.status == "rejected"


def test_sampling_is_deterministic_and_close_to_rate() -> None:
    hits = [sample_hit(i, "classify", "category", 0.1) for i in range(5000)]
    assert hits == [sample_hit(i, "classify", "category", 0.1) for i in range(5000)]
    assert 400 < sum(hits) < 600
    assert not any(sample_hit(i, "x", None, 0.0) for i in range(100))
    assert all(sample_hit(i, "x", None, 1.0) for i in range(100))
    pol = _policy("auto", "normal", sample_rate=0.5)
    outs = [decide(CaseFacts(id=i, case_type="complaint", stage="intake"),
                   AIOutput(kind="set_priority", value={"priority": "high"}, confidence=0.9), pol) for i in range(200)]
    assert all(o.status == "applied" for o in outs)
    assert [o.sampled for o in outs] == [sample_hit(i, "set_priority", None, 0.5) for i in range(200)]
