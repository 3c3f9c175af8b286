"""Compile a validated RuleSet into a durable-rules JSON ruleset and into plain-Python predicates.

Both forms come from the same AST, so the engine and the plain-Python evaluator (used as the benchmark
baseline and as a cross-check in tests) make the same decisions.

A rule whose condition mixes derived facts under `any` is expanded into disjunctive normal form: one
durable rule ("variant") per conjunction of (base-fact condition, derived facts). A rule still fires at
most once per evaluation; later variants of an already-fired rule are skipped.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from casemgr.policyfile import Problem
from casemgr.rules.schema import All, AnyOf, Cmp, Cond, Derived, Rule, RuleSet, derived_used, facts_used

MAX_VARIANTS = 16
CASE_MARK = "_k"  # marks the case fact, so base-fact patterns never match derived facts

Pred = Callable[[dict[str, Any]], bool]


@dataclass
class Variant:
    key: str  # durable rule name, e.g. "r3_0"
    pri: int
    rule: Rule
    rule_index: int  # index into CompiledRuleSet.rules (rank order)
    base: Cond | None
    derived: tuple[str, ...]
    pred: Pred
    json: dict[str, Any]


@dataclass
class CompiledRuleSet:
    ruleset: RuleSet
    rules: list[Rule]  # in rank order (salience desc, then file order)
    variants: list[Variant]  # in pri order
    durable: dict[str, Any]
    used_facts: dict[str, list[str]]  # rule name -> base facts its condition reads
    # Decision outcome per firing sequence (filled by engine.build_decision; a pure function of it).
    outcome_cache: dict[tuple[str, ...], Any] = field(default_factory=dict)

    @property
    def version(self) -> str:
        return self.ruleset.version


class CompileError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


# ------------------------------------------------------------------------------------------- DNF


def _dnf(c: Cond) -> list[tuple[tuple[Cond, ...], tuple[str, ...]]]:
    """List of conjunctions (base conditions, derived names). Base-only subtrees stay whole."""
    if not derived_used(c):
        return [((c,), ())]
    if isinstance(c, Derived):
        return [((), (c.name,))]
    if isinstance(c, AnyOf):
        return [conj for item in c.items for conj in _dnf(item)]
    assert isinstance(c, All)
    out = []
    for combo in product(*(_dnf(i) for i in c.items)):
        base: tuple[Cond, ...] = tuple(b for conj in combo for b in conj[0])
        names: list[str] = []
        for conj in combo:
            names.extend(n for n in conj[1] if n not in names)
        out.append((base, tuple(names)))
    return out


# ------------------------------------------------------------------------------------------- durable JSON


def _cmp_json(c: Cmp) -> dict[str, Any]:
    f, op, v = c.fact, c.op, c.value
    if op == "eq":
        return {f: v}
    if op == "ne":
        return {"$neq": {f: v}}
    if op in ("gt", "gte", "lt", "lte"):
        return {"$" + op: {f: v}}
    if op == "in":
        return {"$or": [{f: x} for x in v]} if len(v) > 1 else {f: v[0]}
    if op == "not_in":
        return {"$and": [{"$neq": {f: x}} for x in v]} if len(v) > 1 else {"$neq": {f: v[0]}}
    if op == "exists":
        return {"$ex" if v else "$nex": {f: 1}}
    if op == "contains":
        return {"$iany": {f: {"$i": v}}}
    if op == "contains_any":
        return {"$or": [{"$iany": {f: {"$i": x}}} for x in v]}
    if op == "contains_all":
        return {"$and": [{"$iany": {f: {"$i": x}}} for x in v]}
    if op == "matches":
        return {"$mt": {f: v}}
    if op == "imatches":
        return {"$imt": {f: v}}
    raise ValueError(f"unknown operator {op}")


def cond_json(c: Cond) -> dict[str, Any]:
    if isinstance(c, Cmp):
        return _cmp_json(c)
    if isinstance(c, All):
        return {"$and": [cond_json(i) for i in c.items]}
    if isinstance(c, AnyOf):
        return {"$or": [cond_json(i) for i in c.items]}
    raise ValueError("derived facts are compiled as separate patterns")


# ------------------------------------------------------------------------------------------- Python


def _cmp_pred(c: Cmp) -> Pred:
    f, op, v = c.fact, c.op, c.value
    # A missing fact never matches (durable-rules behaves the same), except `exists: false`.
    if op == "exists":
        return (lambda d: f in d) if v else (lambda d: f not in d)
    if op == "eq":
        return lambda d: f in d and d[f] == v
    if op == "ne":
        return lambda d: f in d and d[f] != v
    if op == "gt":
        return lambda d: f in d and d[f] > v
    if op == "gte":
        return lambda d: f in d and d[f] >= v
    if op == "lt":
        return lambda d: f in d and d[f] < v
    if op == "lte":
        return lambda d: f in d and d[f] <= v
    if op == "in":
        s = frozenset(v)
        return lambda d: f in d and d[f] in s
    if op == "not_in":
        s = frozenset(v)
        return lambda d: f in d and d[f] not in s
    if op == "contains":
        return lambda d: v in d.get(f, ())
    if op == "contains_any":
        s = frozenset(v)
        return lambda d: not s.isdisjoint(d.get(f, ()))
    if op == "contains_all":
        s = frozenset(v)
        return lambda d: s.issubset(d.get(f, ()))
    if op in ("matches", "imatches"):
        rx = re.compile(v, re.IGNORECASE if op == "imatches" else 0)
        return lambda d: isinstance(d.get(f), str) and rx.fullmatch(d[f]) is not None
    raise ValueError(f"unknown operator {op}")


def cond_pred(c: Cond) -> Pred:
    if isinstance(c, Cmp):
        return _cmp_pred(c)
    if isinstance(c, All):
        ps = [cond_pred(i) for i in c.items]
        return lambda d: all(p(d) for p in ps)
    if isinstance(c, AnyOf):
        ps = [cond_pred(i) for i in c.items]
        return lambda d: any(p(d) for p in ps)
    raise ValueError("derived facts are not base predicates")


# ------------------------------------------------------------------------------------------- compile


def compile_ruleset(rs: RuleSet) -> CompiledRuleSet:
    rules = sorted(rs.rules, key=lambda r: r.rank_key)
    variants: list[Variant] = []
    durable: dict[str, Any] = {}
    problems: list[Problem] = []
    for idx, rule in enumerate(rules):
        conjs = _dnf(rule.when)
        if len(conjs) > MAX_VARIANTS:
            problems.append(
                Problem(
                    rule.file,
                    rule.line,
                    f"condition expands to {len(conjs)} alternatives over derived facts (max {MAX_VARIANTS})",
                    rule.name,
                )
            )
            continue
        for k, (base_items, names) in enumerate(conjs):
            base: Cond | None = None
            if base_items:
                base = base_items[0] if len(base_items) == 1 else All(tuple(base_items))
            patterns: list[dict[str, Any]] = []
            if base is not None:
                patterns.append({"c": {"$and": [{CASE_MARK: "case"}, cond_json(base)]}})
            for j, n in enumerate(names):
                patterns.append({f"d{j}": {"$and": [{CASE_MARK: "derived"}, {"name": n}]}})
            key = f"r{idx}_{k}"
            pri = idx * MAX_VARIANTS + k
            body = {"all": patterns, "pri": pri}
            durable[key] = body
            pred = cond_pred(base) if base is not None else (lambda d: True)
            variants.append(Variant(key, pri, rule, idx, base, names, pred, body))
    if problems:
        raise CompileError(problems)
    variants.sort(key=lambda v: v.pri)
    used = {r.name: facts_used(r.when) for r in rules}
    return CompiledRuleSet(ruleset=rs, rules=rules, variants=variants, durable=durable, used_facts=used)
