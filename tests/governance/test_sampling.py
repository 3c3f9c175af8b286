"""Stratified review sampling (issue 21): low confidence and rare categories are oversampled at the policy's rates,
and the override rate weighted back by 1/rate is unbiased on a synthetic population (the raw rate is not)."""

from __future__ import annotations

import random

import pytest

from casemgr.db import write_session
from casemgr.governance import service
from casemgr.governance.decide import AIOutput, CaseFacts, decide, sample_rate_for
from casemgr.governance.sampling import raw_override_rate, weighted_override_rate
from casemgr.policyfile import PolicyFileError

from .test_decide import FACTS
from .util import new_case, policy

STRATA = [{"name": "low confidence", "confidence_below": 0.75, "rate": 0.5},
          {"name": "rare categories", "categories": ["retail_banking"], "rate": 0.8}]


def _policy():  # type: ignore[no-untyped-def]
    return policy(lambda d: d["review"].update(sample_rate=0.05, strata=STRATA))


def _output(conf: float, category: str) -> AIOutput:
    return AIOutput(kind="classify", field="category", value={"category": category}, confidence=conf)


def test_rates_per_stratum_highest_wins() -> None:
    p = _policy()
    assert sample_rate_for(p, FACTS, _output(0.9, "credit_card")) == (0.05, None)
    assert sample_rate_for(p, FACTS, _output(0.7, "credit_card")) == (0.5, "low confidence")
    assert sample_rate_for(p, FACTS, _output(0.7, "retail_banking")) == (0.8, "rare categories")
    out = decide(FACTS, _output(0.7, "credit_card"), p)
    assert out.status == "applied" and out.extra == {"sample_rate": 0.5, "stratum": "low confidence",
                                                     "double_review": False}  # double_review_rate 0


def test_a_stratum_needs_a_condition() -> None:
    with pytest.raises(PolicyFileError) as err:
        policy(lambda d: d["review"].update(strata=[{"name": "all", "rate": 0.5}]))
    assert "confidence_below or categories" in str(err.value)


def test_weighted_override_rate_is_unbiased_on_a_synthetic_population() -> None:
    """20,000 applied classify decisions; the chance a reviewer would override one is high at low confidence and in
    the rare category. Every decision has a true verdict; only the sampled ones are 'reviewed'."""
    p = _policy()
    rng = random.Random(2113)
    cats = ("credit_card", "debt_collection", "mortgages_and_loans")
    population, reviewed = [], []
    for i in range(20_000):
        category = "retail_banking" if rng.random() < 0.04 else rng.choice(cats)
        conf = rng.uniform(0.6, 1.0)  # all clear the classify threshold 0.6 (credit_reporting, at 0.7, unused)
        p_override = (0.45 if conf < 0.75 else 0.04) + (0.3 if category == "retail_banking" else 0.0)
        overridden = rng.random() < p_override
        facts = CaseFacts(**{**FACTS.__dict__, "id": i + 1})
        out = decide(facts, _output(conf, category), p)
        assert out.status == "applied"
        population.append(overridden)
        if out.sampled:
            reviewed.append((overridden, out.extra["sample_rate"]))
    truth = sum(population) / len(population)
    raw, weighted = raw_override_rate(reviewed), weighted_override_rate(reviewed)
    assert raw is not None and weighted is not None
    assert 2000 < len(reviewed) < 6000  # oversampled strata: far more than 5 % of 20,000
    # The sample over-represents the risky strata: its raw rate is far off; weighting brings it back (SE ~ 0.006).
    assert raw - truth > 0.1, (raw, truth)
    assert abs(weighted - truth) < 0.02, (weighted, truth)


def test_metrics_report_the_weighted_rate() -> None:
    """Two reviewed sampled decisions: an override at rate 0.5 (weight 2) and an accept at rate 0.1 (weight 10)."""
    p = policy(lambda d: d["review"].update(sample_rate=1.0))
    with write_session() as s:
        ids = []
        for conf in (0.85, 0.9):  # both clear set_priority's threshold 0.8: applied and sampled (rate 1)
            case = new_case(s, route=False)
            ids.append(service.record_decision(s, case, AIOutput(kind="set_priority", value={"priority": "high"},
                                                                 confidence=conf), policy=p, route=False).id)
        rows = [service.get_decision(s, i) for i in ids]
        rows[0].sample_rate, rows[1].sample_rate = 0.5, 0.1
        for r in rows:
            s.add(r)
        s.flush()
        service.review_decision(s, ids[0], actor="user:r", roles={"reviewer"}, verdict="override",
                                reason_code="wrong_priority", policy=p)
        service.review_decision(s, ids[1], actor="user:r", roles={"reviewer"}, verdict="accept", policy=p)
        m = {g["group"]: g for g in service.metrics(s, by="kind")}["set_priority"]
    assert m["override_rate"] == 0.5 and m["sampled_reviewed"] == 2
    assert m["override_rate_weighted"] == round(2 / 12, 4)
