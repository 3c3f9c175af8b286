"""Rules throughput benchmark and the hot-reload soak test.

run_rules_bench(): evaluations per second through the durable-rules engine for plain routing facts and
for facts that trigger forward chains three rules deep, plus the plain-Python evaluator making the same
decisions (baseline), all in the same run on the repository's rules.

run_soak(): many evaluations from several threads with hot reloads interleaved; every decision is compared
with the single-threaded result for the version that produced it, and RSS growth is measured.
"""

from __future__ import annotations

import gc
import random
import threading
import time
from pathlib import Path
from typing import Any

from casemgr.rules.compiler import CompiledRuleSet, compile_ruleset
from casemgr.rules.engine import DurableEngine, python_evaluate
from casemgr.rules.facts import COMPLAINT_CATEGORIES, normalize_facts
from casemgr.rules.schema import RuleSource, load_ruleset

# A variant used by the soak test: same rules plus one that reroutes credit-card complaints.
SOAK_EXTRA = """
rules:
  - name: soak-credit-card-priority
    salience: 95
    when: {type: complaint, category: credit_card, urgency: high}
    then:
      queue: complaints-priority
      priority: urgent
"""


def _rules_source(rules_dir: Path | None) -> RuleSource:
    if rules_dir is None:
        from casemgr.rules.service import files_dir

        rules_dir = files_dir()
    return RuleSource.from_path(rules_dir)


def routing_facts(n: int, seed: int = 7) -> list[dict[str, Any]]:
    """Complaints that route by type/category/urgency without deriving anything."""
    rnd = random.Random(seed)
    return [
        normalize_facts({
            "type": "complaint",
            "category": rnd.choice(COMPLAINT_CATEGORIES),
            "urgency": rnd.choice(["low", "normal", "high", "critical"]),
            "sentiment": rnd.choice(["neutral", "positive"]),
            "amount": rnd.randint(10, 9000),
            "customer_tier": rnd.choice(["standard", "gold"]),
            "channel": "email",
            "ai_available": True,
            "ai_confidence": round(rnd.uniform(0.6, 1.0), 2),
        })
        for _ in range(n)
    ]


def chaining_facts(n: int, seed: int = 11) -> list[dict[str, Any]]:
    """Contracts and complaints that trigger chains at least three rules deep."""
    rnd = random.Random(seed)
    out = []
    for i in range(n):
        if i % 2 == 0:
            f = {
                "type": "contract",
                "amount": rnd.choice([25_000, 250_000, 2_500_000]),
                "clauses": rnd.sample(["Non-Compete", "Exclusivity", "Renewal Term", "Anti-Assignment"], 2),
                "channel": "email",
                "ai_available": True,
                "ai_confidence": 0.9,
            }
        else:
            f = {
                "type": "complaint",
                "category": rnd.choice(COMPLAINT_CATEGORIES),
                "urgency": rnd.choice(["normal", "high"]),
                "amount": rnd.choice([15_000, 60_000]),
                "keywords": rnd.choice([["cfpb"], ["fraud"], ["lawsuit", "fraud"]]),
                "customer_tier": "platinum",
                "sentiment": "negative",
                "channel": "form",
                "ai_available": True,
                "ai_confidence": 0.8,
            }
        out.append(normalize_facts(f))
    return out


def _rate(fn: Any, items: list[dict[str, Any]], n: int) -> tuple[float, float]:
    """(evaluations per wall-clock second, per CPU second of this process). The second one is what one
    core delivers even when other jobs share the machine."""
    m = len(items)
    t0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(items[i % m])
    return n / (time.perf_counter() - t0), n / max(time.process_time() - c0, 1e-9)


def run_rules_bench(
    *, n_routing: int = 50_000, n_chaining: int = 20_000, rules_dir: Path | None = None, repeat: int = 3
) -> dict[str, Any]:
    crs = compile_ruleset(load_ruleset(_rules_source(rules_dir)))
    engine = DurableEngine(crs)
    try:
        rf = routing_facts(2000)
        cf = chaining_facts(2000)
        # Sanity: the bench is only meaningful if both evaluators agree and the chains really chain.
        for f in rf[:200] + cf[:200]:
            if engine.evaluate(f, normalized=True).summary() != python_evaluate(crs, f).summary():
                raise AssertionError(f"engine and plain-Python evaluator disagree on {f}")
        depth = max(len(engine.evaluate(f, normalized=True).derived) for f in cf[:50])

        def ev(f: dict[str, Any]) -> Any:
            return engine.evaluate(f, normalized=True)

        def py(f: dict[str, Any]) -> Any:
            return python_evaluate(crs, f)

        _rate(ev, rf, 2000)  # warm up
        routing, routing_cpu = max(_rate(ev, rf, n_routing) for _ in range(repeat))
        chaining, chaining_cpu = max(_rate(ev, cf, n_chaining) for _ in range(repeat))
        baseline, baseline_cpu = max(_rate(py, rf, n_routing) for _ in range(repeat))
        baseline_chain, _ = max(_rate(py, cf, n_chaining) for _ in range(repeat))
    finally:
        engine.close()
    return {
        "bench": "rules",
        "routing_per_s": round(routing),
        "chaining_per_s": round(chaining),
        "baseline_per_s": round(baseline),
        "baseline_chaining_per_s": round(baseline_chain),
        "routing_per_cpu_s": round(routing_cpu),
        "chaining_per_cpu_s": round(chaining_cpu),
        "baseline_per_cpu_s": round(baseline_cpu),
        "rules": len(crs.rules),
        "max_derived_facts": depth,
        "ruleset_version": crs.version,
    }


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 1e6


def soak_sources(rules_dir: Path | None = None) -> tuple[RuleSource, RuleSource]:
    a = _rules_source(rules_dir)
    b = RuleSource(files={**a.files, "zz-soak.yaml": SOAK_EXTRA})
    return a, b


def run_soak(
    *, evals: int = 200_000, reloads: int = 20, threads: int = 4, rules_dir: Path | None = None
) -> dict[str, Any]:
    """Evaluate from `threads` threads through one RulesService while another thread hot-swaps between
    two rule set versions `reloads` times. Compares each decision with the single-threaded reference."""
    from casemgr.rules.service import RulesService

    src_a, src_b = soak_sources(rules_dir)
    compiled: dict[str, CompiledRuleSet] = {}
    for src in (src_a, src_b):
        crs = compile_ruleset(load_ruleset(src))
        compiled[crs.version] = crs
    facts = routing_facts(500, seed=3) + chaining_facts(500, seed=5)
    # Single-threaded reference, per version.
    ref: dict[str, list[dict[str, Any]]] = {}
    for version, crs in compiled.items():
        eng = DurableEngine(crs)
        ref[version] = [eng.evaluate(f, normalized=True).summary() for f in facts]
        eng.close()
    if ref[src_a.version] == ref[src_b.version]:
        raise AssertionError("soak versions must route differently")

    svc = RulesService(use_db=False)
    svc.install(compiled[src_a.version])
    per_thread = evals // threads
    done = [0] * threads
    mismatches: list[str] = []
    errors: list[str] = []
    seen_versions: set[str] = set()
    # Warm up, then measure RSS from here.
    for f in facts:
        svc.evaluate(f)
    gc.collect()
    rss0 = _rss_mb()
    rss_peak = rss0
    stop = threading.Event()

    def worker(k: int) -> None:
        try:
            for i in range(per_thread):
                idx = (i * 7 + k * 131) % len(facts)
                d = svc.evaluate(facts[idx])
                seen_versions.add(d.ruleset_version)
                if d.summary() != ref[d.ruleset_version][idx]:
                    mismatches.append(f"thread {k} eval {i} fact {idx} version {d.ruleset_version}")
                done[k] = i + 1
        except Exception as exc:  # noqa: BLE001 - reported as a failure of the soak
            errors.append(f"thread {k}: {exc!r}")

    def reloader() -> None:
        order = [src_b.version, src_a.version]
        total = per_thread * threads
        for r in range(reloads):
            target = (r + 1) * total // (reloads + 1)
            while sum(done) < target and not stop.is_set():
                time.sleep(0.002)
            if stop.is_set():
                return
            svc.install(compiled[order[r % 2]])

    t0 = time.perf_counter()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    rt = threading.Thread(target=reloader)
    for t in ts:
        t.start()
    rt.start()
    while any(t.is_alive() for t in ts):
        time.sleep(0.05)
        rss_peak = max(rss_peak, _rss_mb())
    stop.set()
    rt.join()
    elapsed = time.perf_counter() - t0
    gc.collect()
    rss1 = _rss_mb()
    svc.close()
    return {
        "soak": "rules",
        "evaluations": sum(done),
        "threads": threads,
        "reloads": svc.reloads - 1,
        "versions_seen": len(seen_versions),
        "mismatches": len(mismatches),
        "first_mismatches": mismatches[:5],
        "errors": errors[:5],
        "seconds": round(elapsed, 2),
        "evals_per_s": round(sum(done) / elapsed),
        "rss_start_mb": round(rss0, 1),
        "rss_end_mb": round(rss1, 1),
        "rss_peak_mb": round(rss_peak, 1),
        "rss_growth_mb": round(rss1 - rss0, 1),
        "ok": not mismatches and not errors and sum(done) == per_thread * threads,
    }
