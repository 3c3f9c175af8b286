"""Policy lifecycle: publish needs governance + reason, diff, rollback, and simulate == replay after publish."""

from __future__ import annotations

import random
from collections import Counter

import pytest
from sqlalchemy import select

from casemgr.db import read_session, write_session
from casemgr.errors import NotFound, PermissionDenied, ValidationFailed
from casemgr.governance import lifecycle, service
from casemgr.governance.decide import AIOutput
from casemgr.governance.models import AIDecision, PolicyVersion
from casemgr.governance.policy import active_policy

from .util import POLICY_FILE, new_case, policy_text

BASE = POLICY_FILE.read_text(encoding="utf-8")
CATS = ["credit_card", "credit_reporting", "debt_collection", "mortgages_and_loans", "retail_banking"]


def _stricter(d):  # type: ignore[no-untyped-def]
    d["decisions"]["classify"]["threshold"] = 0.85
    d["decisions"]["classify"]["thresholds_by_category"] = {"retail_banking": 0.95, "credit_reporting": 0.9}
    d["decisions"]["set_priority"] = {"mode": "suggest", "owner": "lead"}
    d["decisions"]["draft_reply"] = {"mode": "never", "owner": "agent"}
    d["limits"]["max_refund_amount"] = 50
    d["decisions"]["approve_refund"] = {"mode": "auto", "owner": "finance", "threshold": 0.9}
    d["review"]["sample_rate"] = 0.25


STRICT = policy_text(_stricter)


# Cases (6 AI outputs each) for simulate-vs-replay, which must agree decision by decision at any size; 150 gives
# every move asserted below (500 took 52 s of the governance room's 115 s).
N_REPLAY = 150


def _seed(n: int = N_REPLAY) -> None:
    rng = random.Random(11)
    pol = active_policy()
    with write_session() as s:
        for i in range(n):
            case = new_case(s, subject=f"complaint {i}", description="text", route=False)
            outs = [
                AIOutput(kind="classify", field="category", value={"category": rng.choice(CATS)},
                         confidence=round(rng.random(), 3), model_version="m-1", provider="local"),
                AIOutput(kind="classify", field="urgency", value={"urgency": rng.choice(["low", "normal", "high"])},
                         confidence=round(rng.random(), 3), model_version="m-1", provider="local"),
                AIOutput(kind="set_priority", value={"priority": rng.choice(["low", "normal", "high"])},
                         confidence=round(rng.random(), 3), model_version="m-1", provider="local"),
                AIOutput(kind="draft_reply", value={"text": f"Dear customer {i}"}, confidence=0.7, model_version="m-1"),
                AIOutput(kind="approve_refund", value={"amount": rng.choice([20, 45, 80, 500])},
                         confidence=round(rng.random(), 3), model_version="m-1"),
                AIOutput(kind="close_case", value={"to_stage": "closed"}, confidence=0.99, model_version="m-1"),
            ]
            for o in outs:
                service.record_decision(s, case, o, policy=pol, route=False)


def test_simulating_a_stricter_policy_predicts_exactly_what_publishing_it_produces_on_replay() -> None:
    _seed(N_REPLAY)
    with read_session() as s:
        sim = lifecycle.simulate(s, STRICT, last_n=N_REPLAY)
    assert sim["cases"] == N_REPLAY and sim["decisions"] == 6 * N_REPLAY
    assert sim["moves"].get("applied->suggested", 0) > 0  # stricter thresholds and set_priority: suggest
    assert sim["moves"].get("suggested->rejected", 0) == N_REPLAY  # draft_reply: never
    assert sim["after"]["applied"] < sim["before"]["applied"]
    assert sim["per_owner"]["lead"]["after"]["suggested"] == N_REPLAY
    with write_session() as s:
        pub = lifecycle.publish(s, STRICT, actor="user:gov", roles={"governance"}, reason="tighten after audit")
        assert pub["changed"] and pub["version"] == sim["candidate_version"]
    with write_session() as s:
        rep = lifecycle.replay(s, last_n=N_REPLAY)
    assert rep["policy_version"] == sim["candidate_version"]
    assert rep["totals"] == sim["after"]
    assert rep["per_owner"] == {o: v["after"] for o, v in sim["per_owner"].items()}
    assert rep["per_kind"] == {k: v["after"] for k, v in sim["per_kind"].items()}
    with read_session() as s:
        rows = list(s.execute(select(AIDecision).where(AIDecision.run_id == rep["run_id"])).scalars())
        assert Counter(r.outcome for r in rows) == Counter({k: v for k, v in sim["after"].items() if v})
        assert sum(r.sampled for r in rows) == sim["sampled_for_review_after"]
        assert {r.policy_version for r in rows} == {sim["candidate_version"]}
        # Simulating the now-active policy again is a no-op: nothing moves.
        again = lifecycle.simulate(s, STRICT, last_n=N_REPLAY)
        assert again["moves"] == {} and again["before"] == again["after"] == sim["after"]


def test_publish_needs_governance_and_reason_then_diff_versions_and_rollback() -> None:
    with write_session() as s:
        with pytest.raises(PermissionDenied):
            lifecycle.publish(s, BASE, actor="user:a", roles={"agent", "reviewer"}, reason="x")
        with pytest.raises(ValidationFailed):
            lifecycle.publish(s, BASE, actor="user:g", roles={"governance"}, reason=" ")
        with pytest.raises(NotFound):
            lifecycle.rollback(s, actor="user:g", roles={"governance"}, reason="nothing yet")
    with write_session() as s:
        first = lifecycle.publish(s, BASE, actor="user:g", roles={"governance"}, reason="baseline")
        same = lifecycle.publish(s, BASE, actor="user:g", roles={"governance"}, reason="again")
        assert not same["changed"] and same["version"] == first["version"]
        d = lifecycle.diff(s, STRICT)
        paths = {c["path"] for c in d["changes"]}
        assert {"decisions.set_priority.mode", "review.sample_rate", "limits.max_refund_amount"} <= paths
        assert d["text_diff"].startswith("--- a/") and d["candidate_version"] != d["active_version"]
        second = lifecycle.publish(s, STRICT, actor="user:g", roles={"governance"}, reason="stricter")
        assert active_policy(s).version == second["version"] != first["version"]
    with write_session() as s:
        rb = lifecycle.rollback(s, actor="user:g2", roles={"governance"}, reason="too strict for the team")
        assert rb["version"] == first["version"] and active_policy(s).version == first["version"]
        vs = lifecycle.versions(s)
        assert [v["reason"] for v in vs] == ["too strict for the team", "stricter", "baseline"]
        assert [v["is_active"] for v in vs] == [True, False, False]
        assert vs[0]["author"] == "user:g2" and vs[1]["diff"]
        rb2 = lifecycle.rollback(s, actor="user:g", roles={"governance"}, reason="back", to=second["version"][:8])
        assert rb2["version"] == second["version"]
        n = s.execute(select(PolicyVersion).where(PolicyVersion.kind == "ai-policy")).scalars().all()
        assert len(n) == 4
