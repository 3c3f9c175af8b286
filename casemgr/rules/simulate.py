"""Impact preview: re-evaluate recent cases under candidate rules and compare with the active rules."""

from __future__ import annotations

from collections import Counter
from typing import Any

from sqlalchemy import select

from casemgr.rules.compiler import CompiledRuleSet, compile_ruleset
from casemgr.rules.engine import DurableEngine
from casemgr.rules.facts import facts_from_case
from casemgr.rules.schema import RuleSource, load_ruleset


def compare(
    current: CompiledRuleSet, candidate: CompiledRuleSet, facts_list: list[tuple[Any, dict[str, Any]]]
) -> dict[str, Any]:
    """Evaluate each (case id, facts) under both rule sets and count the differences."""
    queue_moves: Counter[tuple[str, str]] = Counter()
    prio_moves: Counter[tuple[str, str]] = Counter()
    task_changes = 0
    examples: list[dict[str, Any]] = []
    changed = 0
    a, b = DurableEngine(current), DurableEngine(candidate)
    try:
        for case_id, facts in facts_list:
            da, db = a.evaluate(facts), b.evaluate(facts)
            moved = da.queue != db.queue
            if moved:
                changed += 1
                queue_moves[(da.queue, db.queue)] += 1
            if da.priority != db.priority:
                prio_moves[(da.priority, db.priority)] += 1
            ta = [(t.kind, t.name) for t in da.tasks]
            tb = [(t.kind, t.name) for t in db.tasks]
            if ta != tb:
                task_changes += 1
            if (moved or da.priority != db.priority) and len(examples) < 20:
                examples.append({
                    "case_id": case_id,
                    "queue": [da.queue, db.queue],
                    "priority": [da.priority, db.priority],
                    "fired_now": da.fired_names,
                    "fired_candidate": db.fired_names,
                })
    finally:
        a.close()
        b.close()
    return {
        "current_version": current.version,
        "candidate_version": candidate.version,
        "evaluated": len(facts_list),
        "route_changed": changed,
        "priority_changed": sum(prio_moves.values()),
        "tasks_changed": task_changes,
        "queue_moves": [
            {"from": f, "to": t, "count": n} for (f, t), n in sorted(queue_moves.items(), key=lambda x: -x[1])
        ],
        "priority_moves": [
            {"from": f, "to": t, "count": n} for (f, t), n in sorted(prio_moves.items(), key=lambda x: -x[1])
        ],
        "examples": examples,
    }


def last_cases_facts(n: int) -> list[tuple[Any, dict[str, Any]]]:
    from casemgr.cases.models import Case
    from casemgr.db import read_session

    with read_session() as s:
        cases = s.execute(select(Case).order_by(Case.id.desc()).limit(n)).scalars().all()  # type: ignore[union-attr]
        return [(c.id, facts_from_case(c)) for c in cases]


def simulate(candidate: RuleSource, last: int) -> dict[str, Any]:
    """Candidate must be valid (raises PolicyFileError otherwise); current = the service's active set."""
    from casemgr.rules.service import get_service

    cand = compile_ruleset(load_ruleset(candidate))
    current = get_service().compiled
    return compare(current, cand, last_cases_facts(last))
