"""Engine safety around durable-rules 2.0.28, the fact vocabulary, and the Decision contract."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import durable_rules_engine as dre
import pytest

from casemgr.rules import engine as engine_mod
from casemgr.rules.compiler import compile_ruleset
from casemgr.rules.engine import ENGINE_LOCK, SID, DurableEngine, EngineError, python_evaluate
from casemgr.rules.facts import facts_from_case, find_keywords, normalize_facts
from casemgr.rules.schema import RuleSource, load_ruleset

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def crs():  # type: ignore[no-untyped-def]
    return compile_ruleset(
        load_ruleset(RuleSource.from_path(ROOT / "policies" / "rules"), policies_dir=ROOT / "policies")
    )


def test_session_is_empty_after_each_evaluation(crs) -> None:  # type: ignore[no-untyped-def]
    eng = DurableEngine(crs)
    try:
        for facts in ({"type": "contract", "amount": 2_000_000, "clauses": ["Non-Compete"]}, {"type": "x"}, {}):
            eng.evaluate(facts)
            with ENGINE_LOCK:
                assert json.loads(dre.get_facts(eng._handle, SID)) == []
    finally:
        eng.close()


def test_same_version_registers_under_fresh_names_and_close_frees(crs) -> None:  # type: ignore[no-untyped-def]
    engines = [DurableEngine(crs) for _ in range(5)]
    assert len({e.name for e in engines}) == 5
    assert all(e.name.startswith(f"routing_{crs.version}_") for e in engines)
    for e in engines:
        assert e.evaluate({"type": "contract"}).queue == "contracts-intake"
        e.close()
        e.close()  # idempotent
    with pytest.raises(EngineError):
        engines[0].evaluate({"type": "contract"})


def test_many_evaluations_keep_results_equal(crs) -> None:  # type: ignore[no-untyped-def]
    eng = DurableEngine(crs)
    try:
        facts = {"type": "complaint", "category": "credit_card", "keywords": ["cfpb"], "amount": 20000}
        first = eng.evaluate(facts).model_dump()
        for _ in range(300):
            assert eng.evaluate(facts).model_dump() == first
            eng.evaluate({"type": "warranty"})
    finally:
        eng.close()


CLOSE_STRESS = """
import random, sys
import yaml  # changes the heap layout; enough to turn the raw delete_state bug into a crash
from pathlib import Path
from casemgr.rules.engine import DurableEngine
from casemgr.bench.rules import routing_facts, chaining_facts
from casemgr.rules.compiler import compile_ruleset
from casemgr.rules.schema import RuleSource, load_ruleset
root = Path(sys.argv[1])
crs = compile_ruleset(load_ruleset(RuleSource.from_path(root / "policies" / "rules"),
                                   policies_dir=root / "policies"))
rnd = random.Random(int(sys.argv[2]))
pool = routing_facts(20) + chaining_facts(20) + [{"type": "warranty", "urgency": "critical"}, {}]
for k in range(25):
    e = DurableEngine(crs)
    for i in range(rnd.randint(0, 10)):
        e.evaluate(rnd.choice(pool))
    e.evaluate({"type": "warranty", "urgency": "critical"})  # last assertion fires nothing
    e.close()
print("ok")
"""


@pytest.mark.parametrize("seed", [1, 2])
def test_close_after_non_matching_evaluation_does_not_crash(seed: int) -> None:
    # Raw delete_state after such an evaluation segfaults in this layout; close() must not.
    res = subprocess.run([sys.executable, "-c", CLOSE_STRESS, str(ROOT), str(seed)], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr[-2000:]
    assert res.stdout.strip() == "ok"


def test_error_mid_agenda_resets_state_and_next_evaluation_is_clean(crs, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    eng = DurableEngine(crs)
    try:
        facts = {"type": "contract", "amount": 50000}
        good = eng.evaluate(facts).model_dump()
        calls = {"n": 0}
        real = dre.complete_and_start_action

        def flaky(h, state):  # type: ignore[no-untyped-def]
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("boom in the middle of the agenda")
            return real(h, state)

        monkeypatch.setattr(engine_mod.dre, "complete_and_start_action", flaky)
        with pytest.raises(RuntimeError):
            eng.evaluate(facts)
        monkeypatch.setattr(engine_mod.dre, "complete_and_start_action", real)
        assert eng.recycles == 1  # a fresh ruleset handle replaced the one with the half-run agenda
        assert eng.evaluate(facts).model_dump() == good
        with ENGINE_LOCK:
            assert json.loads(dre.get_facts(eng._handle, SID)) == []
    finally:
        eng.close()


def test_threads_share_one_engine_safely(crs) -> None:  # type: ignore[no-untyped-def]
    eng = DurableEngine(crs)
    facts = [
        {"type": "contract", "amount": a, "clauses": c}
        for a in (100, 20_000, 3_000_000)
        for c in ([], ["Renewal Term"], ["Exclusivity", "Anti-Assignment"])
    ]
    want = [eng.evaluate(f).summary() for f in facts]
    bad: list[int] = []

    def run() -> None:
        for i in range(600):
            k = i % len(facts)
            if eng.evaluate(facts[k]).summary() != want[k]:
                bad.append(k)

    ts = [threading.Thread(target=run) for _ in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    eng.close()
    assert bad == []


def test_default_queue_is_an_explicit_outcome(crs) -> None:  # type: ignore[no-untyped-def]
    eng = DurableEngine(crs)
    d = eng.evaluate({"type": "warranty", "urgency": "critical"})
    eng.close()
    assert (d.queue, d.default_used, d.fired, d.owner_role, d.priority) == ("default", True, [], "agent", None)


def test_normalize_facts() -> None:
    f = normalize_facts({
        "type": "Complaint", "category": "CREDIT_CARD", "amount": "12,500", "keywords": ["b", "a", "a", None],
        "ai_available": 1, "ai_confidence": None, "unknown": 3, "stage": " New ",
    })
    assert f == {
        "type": "complaint", "category": "credit_card", "amount": 12500, "keywords": ["a", "b"],
        "clauses": [], "ai_available": True, "stage": "New",
    }


def test_facts_from_case_on_any_object() -> None:
    case = SimpleNamespace(
        case_type="contract", stage="review", category=None, urgency="high", sentiment=None, amount=None,
        customer_tier="gold", channel="email", subject="Supplier agreement", description="Mentions a lawsuit",
        ai={"classification": {"label": "x", "confidence": 0.42}},
        contract={"clauses": {"Non-Compete": {"present": True}, "Exclusivity": {"present": False}}},
        fields={"amount": "25000"},
    )
    f = facts_from_case(case)
    assert f == {
        "type": "contract", "stage": "review", "urgency": "high", "amount": 25000, "customer_tier": "gold",
        "channel": "email", "keywords": ["lawsuit"], "clauses": ["Non-Compete"], "ai_confidence": 0.42,
        "ai_available": True,
    }
    contract_ai = SimpleNamespace(case_type="contract", ai={"classification": {"confidence": None,
                                                                            "urgency_confidence": 0.7}},
                                  contract={"clauses": {"Exclusivity": True, "Non-Compete": False}})
    assert facts_from_case(contract_ai) == {
        "type": "contract", "keywords": [], "clauses": ["Exclusivity"], "ai_available": True, "ai_confidence": 0.7,
    }
    bare = facts_from_case(object())
    assert bare == {"keywords": [], "clauses": [], "ai_available": False}
    assert find_keywords("Identity theft reported to the CFPB!") == ["identity theft", "cfpb"]


REGEXES = ["email|form", "rev.*", "(new|open)_[a-z]+", "a[^b]c", "x+y?z", "stage.", "[0-9]+"]
STAGES = ["email", "form", "emails", "review", "rev", "preview", "new_case", "open_x", "new_", "new_Case",
          "abc", "acc", "abbc", "xz", "xxyz", "xyyz", "stage1", "stage", "stage12", "123", "12a", "", "REVIEW"]


def test_regex_semantics_match_python() -> None:
    lines = ["rules:"]
    for i, rx in enumerate(REGEXES):
        for op in ("matches", "imatches"):
            lines += [f"  - name: rx{i}-{op}", f"    when: {{stage: {{{op}: '{rx}'}}}}",
                      "    then: {queue: escalations}"]
    rs = load_ruleset(RuleSource(files={"rx.yaml": "\n".join(lines) + "\n"}), policies_dir=ROOT / "policies")
    crs = compile_ruleset(rs)
    eng = DurableEngine(crs)
    try:
        any_fired = 0
        for st in STAGES:
            facts = {"stage": st} if st else {}
            got = eng.evaluate(facts).fired_names
            want = python_evaluate(crs, facts).fired_names
            assert got == want, st
            any_fired += bool(got)
        assert any_fired >= 10
    finally:
        eng.close()


def test_engine_and_python_agree_on_random_facts(crs) -> None:  # type: ignore[no-untyped-def]
    import random

    from casemgr.rules.facts import BASE_FACTS, CUAD_CLAUSES, KEYWORDS

    rnd = random.Random(42)
    numbers = [0, 1, 9999, 10000, 10001, 999999.5, 1000000, 2_500_000, 1e20, -5, 0.49, 0.5, 0.51, 1e-7,
               float("nan"), "12,000", "abc", None, True]

    def pick(name: str) -> object:
        spec = BASE_FACTS[name]
        if spec.kind == "num":
            return rnd.choice(numbers)
        if spec.kind == "bool":
            return rnd.choice([True, False, None, 1, 0])
        if spec.kind == "list":
            pool = list(CUAD_CLAUSES) if name == "clauses" else list(KEYWORDS)
            return rnd.choice([rnd.sample(pool, rnd.randint(0, 3)), "fraud", 7, None])
        return rnd.choice([*(spec.values or ("new", "review")), "other", "", None, 3])

    eng = DurableEngine(crs)
    try:
        for _ in range(1500):
            facts = {n: pick(n) for n in BASE_FACTS if rnd.random() < 0.7}
            assert eng.evaluate(facts).model_dump() == python_evaluate(crs, facts).model_dump(), facts
    finally:
        eng.close()
