"""The scenario table (tests/rules/scenarios.yaml) against the real rules in policies/rules/."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from casemgr.rules.compiler import compile_ruleset
from casemgr.rules.engine import Decision, DurableEngine, python_evaluate
from casemgr.rules.schema import RuleSource, load_ruleset

ROOT = Path(__file__).resolve().parents[2]
DATA = yaml.safe_load((Path(__file__).parent / "scenarios.yaml").read_text())
SCENARIOS = DATA["scenarios"]


def _facts(sc: dict[str, Any]) -> dict[str, Any]:
    merged = {**DATA["defaults"], **sc["facts"]}
    return {k: v for k, v in merged.items() if v is not None}


@pytest.fixture(scope="module")
def engine():  # type: ignore[no-untyped-def]
    rs = load_ruleset(RuleSource.from_path(ROOT / "policies" / "rules"), policies_dir=ROOT / "policies")
    eng = DurableEngine(compile_ruleset(rs))
    yield eng
    eng.close()


def _observed(d: Any) -> dict[str, Any]:
    return {
        "queue": d.queue,
        "owner_role": d.owner_role,
        "priority": d.priority,
        "sla_hours": d.sla_hours,
        "tasks": [t.name for t in d.tasks],
        "approvals": [t.name for t in d.approvals],
        "escalate": d.escalate,
        "derived": d.derived,
        "default_used": d.default_used,
        "fired": d.fired_names,
        "notify_roles": [n.role for n in d.notify],
    }


def test_table_is_big_enough_and_has_deep_chains() -> None:
    assert len(SCENARIOS) >= 40
    kinds = {_facts(s).get("type") for s in SCENARIOS}
    assert {"complaint", "contract"} <= kinds
    assert len({s["name"] for s in SCENARIOS}) == len(SCENARIOS)
    every = [s for s in SCENARIOS if {"queue", "priority", "tasks", "fired"} <= set(s["expect"])]
    assert len(every) >= 20
    # Chains at least three rules deep, each link enabled only by the fact derived by the previous one.
    chains = {
        "contract-non-compete-legal-chain": ["risky-clause", "risky-clause-legal", "legal-review"],
        "contract-high-value-legal-chain": ["high-value", "contract-high-value-legal", "legal-review"],
        "complaint-high-value-refund-chain": ["high-value", "complaint-refund-review", "refund-approval"],
        "contract-very-high-value-finance": ["high-value", "very-high-value", "finance-approval"],
    }
    by_name = {s["name"]: s for s in SCENARIOS}
    for name, chain in chains.items():
        fired = by_name[name]["expect"]["fired"]
        assert [f for f in fired if f in chain] == chain, name


@pytest.mark.parametrize("sc", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
def test_scenario(engine: DurableEngine, sc: dict[str, Any]) -> None:
    facts = _facts(sc)
    decision = engine.evaluate(facts)
    got = _observed(decision)
    for key, want in sc["expect"].items():
        assert got[key] == want, f"{sc['name']}: {key}"
    # Deterministic, and the plain-Python evaluator agrees exactly.
    assert engine.evaluate(facts).model_dump() == decision.model_dump()
    assert python_evaluate(engine.crs, facts).model_dump() == decision.model_dump()
    # Explanation: every fired rule names its file, line and the facts it matched.
    for f in decision.fired:
        assert f.file.endswith(".yaml") and f.line > 0
        for k, v in f.matched.items():
            assert facts.get(k, True if k in decision.derived else None) == v or k in decision.derived
    assert decision.ruleset_version == engine.version
    # The fast construction in build_decision yields a well-formed model.
    assert Decision.model_validate(decision.model_dump()) == decision
    assert Decision.model_validate_json(decision.model_dump_json()) == decision


def test_matched_facts_are_reported(engine: DurableEngine) -> None:
    d = engine.evaluate({"type": "contract", "amount": 50000})
    first = d.fired[0]
    assert (first.rule, first.file, first.salience) == ("high-value", "common.yaml", 50)
    assert first.matched == {"amount": 50000}
    second = d.fired[1]
    assert second.rule == "contract-high-value-legal"
    assert second.matched == {"type": "contract", "high_value": True}
