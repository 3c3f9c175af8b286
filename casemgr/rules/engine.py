"""Evaluate facts against a compiled rule set with durable-rules' C core, and build the Decision.

Engine safety (see /work/shared/notes/durable-rules.md and docs/rules.md):
- Only the low-level `durable_rules_engine` C API is used; `durable.lang`/`Host` start timer threads that
  crash on `delete_state`.
- The C core is not thread-safe: every call on any engine goes through ENGINE_LOCK (one per process).
- One session id per engine, reused: each evaluation asserts the case fact, runs the agenda (asserting
  derived facts as rules fire), then retracts everything it asserted, so the session is empty again.
  Case state lives in our database, never in the engine.
- `delete_state` is dangerous: measured here, it frees invalid pointers (free(): invalid pointer, double
  free, SIGSEGV) when the session's last assertion produced no action; whether it crashes depends on heap
  layout (importing yaml was enough). So it is only called from close(), right after asserting a sentinel
  fact whose rule fires, which makes the last assertion one that produced an action. Evaluations never
  need it: retracting leaves the session empty (0 MB RSS growth over 200,000 evaluations).
- After an error mid-agenda the engine registers a fresh ruleset handle and drops the old one with
  `delete_ruleset` alone (it does not free the session: about 0.9 MB lost per error, which is rare).
- Each engine registers its ruleset under a fresh name (`routing_<hash>_<n>`): re-registering a name fails.
"""

from __future__ import annotations

import itertools
import json
import threading
from typing import Any, Literal, TypeVar

import durable_rules_engine as dre
from pydantic import BaseModel, Field

from casemgr.rules.compiler import CASE_MARK, CompiledRuleSet, Variant
from casemgr.rules.facts import normalize_facts
from casemgr.rules.schema import Rule

ENGINE_LOCK = threading.RLock()
SENTINEL_KEY = "zz_sentinel"
SID = "1"
DEFAULT_QUEUE = "default"
_names = itertools.count(1)
_M = TypeVar("_M", bound=BaseModel)


class DecisionTask(BaseModel):
    name: str
    role: str
    sop: str | None = None
    kind: Literal["task", "approval"] = "task"
    rule: str


class Notification(BaseModel):
    role: str
    message: str = ""
    rule: str


class Escalation(BaseModel):
    rule: str
    to: str | None = None
    reason: str | None = None


class FiredRule(BaseModel):
    rule: str
    file: str
    line: int
    salience: int
    matched: dict[str, Any] = Field(default_factory=dict)


class Decision(BaseModel):
    queue: str = DEFAULT_QUEUE
    owner_role: str | None = None
    priority: str | None = None  # None: no fired rule sets a priority (the case keeps its own)
    priority_rule: str | None = None  # the fired rule whose priority won (the policy binds it if AI facts drove it)
    sla_hours: float | None = None
    tasks: list[DecisionTask] = Field(default_factory=list)
    approvals: list[DecisionTask] = Field(default_factory=list)
    escalate: bool = False
    escalations: list[Escalation] = Field(default_factory=list)
    notify: list[Notification] = Field(default_factory=list)
    derived: list[str] = Field(default_factory=list)
    fired: list[FiredRule] = Field(default_factory=list)
    ruleset_version: str = ""
    default_used: bool = True

    @property
    def fired_names(self) -> list[str]:
        return [f.rule for f in self.fired]

    def summary(self) -> dict[str, Any]:
        """The routing-relevant part, for comparisons (simulate, soak)."""
        return {
            "queue": self.queue,
            "owner_role": self.owner_role,
            "priority": self.priority,
            "sla_hours": self.sla_hours,
            "tasks": [(t.kind, t.name, t.role) for t in self.tasks],
            "escalate": self.escalate,
            "fired": self.fired_names,
        }


def _make(cls: type[_M], data: dict[str, Any]) -> _M:
    """What BaseModel.model_construct does, minus its per-field bookkeeping (3x faster; every field given).

    Only for values that come from validated rules and normalized facts. tests/rules checks that
    Decision.model_validate(d.model_dump()) == d for every scenario.
    """
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", data)
    object.__setattr__(obj, "__pydantic_fields_set__", set(data))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


_Outcome = tuple[
    str, str | None, str | None, float | None, list[DecisionTask], list[DecisionTask], list[Escalation],
    list[Notification], bool, str | None,
]
_OUTCOME_CACHE_MAX = 4096


def _outcome(crs: CompiledRuleSet, rules: list[Rule]) -> _Outcome:
    """Everything in a Decision that depends only on which rules fired, in which order."""
    # Scalars: the fired rule that ranks first (highest salience, then earliest in file order) wins,
    # whatever order the rules fired in (forward chaining can fire a high-salience rule late).
    queue = owner = prio = prio_rule = None
    sla: float | None = None
    for r in sorted(rules, key=lambda r: r.rank_key):
        a = r.then
        queue = queue or a.queue
        owner = owner or a.owner_role
        if prio is None and a.priority:
            prio, prio_rule = a.priority, r.name
        sla = sla or a.sla_hours
    caps = [r.then.sla_max_hours for r in rules if r.then.sla_max_hours]
    if caps:
        sla = min([sla, *caps]) if sla is not None else min(caps)
    q = queue or DEFAULT_QUEUE
    tasks: list[DecisionTask] = []
    approvals: list[DecisionTask] = []
    escalations: list[Escalation] = []
    notify: list[Notification] = []
    seen: set[tuple[str, str]] = set()
    for rule in rules:
        a = rule.then
        for t in a.tasks:
            if (t.kind, t.name) in seen:
                continue
            seen.add((t.kind, t.name))
            task = DecisionTask(name=t.name, role=t.role, sop=t.sop, kind=t.kind, rule=rule.name)
            tasks.append(task)
            if t.kind == "approval":
                approvals.append(task)
        if a.escalate:
            escalations.append(Escalation(rule=rule.name, to=a.escalate_to, reason=a.escalate_reason))
        for n in a.notify:
            notify.append(Notification(role=n["role"], message=n["message"], rule=rule.name))
    owner = owner or crs.ruleset.queues.get(q)
    return q, owner, prio, sla, tasks, approvals, escalations, notify, queue is None, prio_rule


def build_decision(
    crs: CompiledRuleSet, facts: dict[str, Any], fired: list[tuple[Rule, tuple[str, ...]]], derived: list[str]
) -> Decision:
    """Turn the ordered list of fired rules into a Decision (conflict resolution lives in _outcome).

    The outcome for a given firing sequence is cached per rule set: it is a pure function of it. The
    nested task/notification models are shared between Decisions that way; treat Decisions as read-only.
    """
    used = crs.used_facts
    fired_out = []
    for rule, dnames in fired:
        matched = {f: facts.get(f) for f in used[rule.name]}
        for n in dnames:
            matched[n] = True
        fired_out.append(_make(FiredRule, {
            "rule": rule.name, "file": rule.file, "line": rule.line, "salience": rule.salience, "matched": matched,
        }))
    key = tuple(r.name for r, _ in fired)
    cache: dict[tuple[str, ...], _Outcome] = crs.outcome_cache
    out = cache.get(key)
    if out is None:
        out = _outcome(crs, [r for r, _ in fired])
        if len(cache) >= _OUTCOME_CACHE_MAX:
            cache.clear()
        cache[key] = out
    q, owner, prio, sla, tasks, approvals, escalations, notify, default_used, prio_rule = out
    return _make(Decision, {
        "queue": q,
        "owner_role": owner,
        "priority": prio,
        "priority_rule": prio_rule,
        "sla_hours": sla,
        "tasks": list(tasks),
        "approvals": list(approvals),
        "escalate": bool(escalations),
        "escalations": list(escalations),
        "notify": list(notify),
        "derived": list(derived),
        "fired": fired_out,
        "ruleset_version": crs.version,
        "default_used": default_used,
    })


def python_fired(crs: CompiledRuleSet, facts: dict[str, Any]) -> tuple[list[tuple[Rule, tuple[str, ...]]], list[str]]:
    """Plain-Python forward chaining with the engine's agenda order (lowest pri first)."""
    base_ok = [v.pred(facts) for v in crs.variants]
    derived: list[str] = []
    dset: set[str] = set()
    done_variants: set[int] = set()
    fired_rules: set[int] = set()
    fired: list[tuple[Rule, tuple[str, ...]]] = []
    variants = crs.variants
    while True:
        nxt = -1
        for i, v in enumerate(variants):
            if base_ok[i] and i not in done_variants and (not v.derived or dset.issuperset(v.derived)):
                nxt = i
                break
        if nxt < 0:
            break
        done_variants.add(nxt)
        v = variants[nxt]
        if v.rule_index in fired_rules:
            continue
        fired_rules.add(v.rule_index)
        fired.append((v.rule, v.derived))
        for n in v.rule.then.derive:
            if n not in dset:
                dset.add(n)
                derived.append(n)
    return fired, derived


def python_evaluate(crs: CompiledRuleSet, facts: dict[str, Any]) -> Decision:
    f = normalize_facts(facts)
    fired, derived = python_fired(crs, f)
    return build_decision(crs, f, fired, derived)


class EngineError(RuntimeError):
    pass


class DurableEngine:
    """One compiled rule set registered in the durable-rules C core. Use only under ENGINE_LOCK."""

    def __init__(self, crs: CompiledRuleSet) -> None:
        self.crs = crs
        self.version = crs.version
        self._by_key: dict[str, Variant] = {v.key: v for v in crs.variants}
        self._derived_json: dict[str, str] = {}
        durable = dict(crs.durable)
        durable[SENTINEL_KEY] = {"all": [{"s": {CASE_MARK: "sentinel"}}], "pri": 2**30}
        self._ruleset_json = json.dumps(durable)
        self._count = 0
        self.recycles = 0
        self.closed = False
        self.name = ""
        with ENGINE_LOCK:
            self._handle = self._register()

    def _register(self) -> Any:
        # A fresh name every time: durable-rules refuses to register a name twice.
        self.name = f"routing_{self.version}_{next(_names)}"
        return dre.create_ruleset(self.name, self._ruleset_json)

    def _recycle(self) -> None:
        """Replace the ruleset handle (and with it the session). Caller holds ENGINE_LOCK."""
        old = self._handle
        self._handle = self._register()
        self.recycles += 1
        dre.delete_ruleset(old)

    def _drop_session(self) -> bool:
        """Free the session safely (see module doc): fire the sentinel rule, then delete_state."""
        h = self._handle
        js = json.dumps({"sid": SID, "id": "sentinel", CASE_MARK: "sentinel"})
        code, state = dre.assert_fact(h, js)
        res = dre.start_action_for_state(h, state) if code == 0 else None
        if not res or not res[1].startswith('{"' + SENTINEL_KEY + '"'):
            return False  # unexpected: leave the session alone rather than risk the crash
        msg: str | None = res[1]
        while msg:
            msg = dre.complete_and_start_action(h, state)
        dre.retract_fact(h, js)
        dre.delete_state(h, SID)
        return True

    def _derived_fact(self, name: str) -> str:
        js = self._derived_json.get(name)
        if js is None:
            js = json.dumps({"sid": SID, "id": "d:" + name, CASE_MARK: "derived", "name": name})
            self._derived_json[name] = js
        return js

    def fire(self, facts: dict[str, Any]) -> tuple[list[tuple[Rule, tuple[str, ...]]], list[str]]:
        """Run the agenda for normalized facts. Caller holds ENGINE_LOCK."""
        if self.closed:
            raise EngineError(f"engine {self.name} is closed")
        payload = dict(facts)
        payload["sid"] = SID
        payload["id"] = "case"
        payload[CASE_MARK] = "case"
        case_js = json.dumps(payload, sort_keys=True)
        asserted = [case_js]
        fired: list[tuple[Rule, tuple[str, ...]]] = []
        derived: list[str] = []
        fired_rules: set[str] = set()
        h = self._handle
        ok = False
        try:
            code, state = dre.assert_fact(h, case_js)
            if code == 0:
                res = dre.start_action_for_state(h, state)
                msg = res[1] if res else None
                while msg:
                    # Activation text is '{"<rule key>":{...}}'; keys are plain r<i>_<k>, so no JSON parse.
                    key = msg[2 : msg.index('"', 2)]
                    v = self._by_key[key]
                    rule = v.rule
                    if rule.name not in fired_rules:
                        fired_rules.add(rule.name)
                        fired.append((rule, v.derived))
                        for n in rule.then.derive:
                            if n not in derived:
                                derived.append(n)
                                js = self._derived_fact(n)
                                asserted.append(js)
                                dre.assert_fact(h, js)
                    msg = dre.complete_and_start_action(h, state)
            elif code not in (1,):
                raise EngineError(f"assert_fact returned code {code}")
            for js in asserted:
                dre.retract_fact(h, js)
            ok = True
        finally:
            self._count += 1
            if not ok:
                self._recycle()
        return fired, derived

    def evaluate(self, facts: dict[str, Any], *, normalized: bool = False) -> Decision:
        f = facts if normalized else normalize_facts(facts)
        with ENGINE_LOCK:
            fired, derived = self.fire(f)
        return build_decision(self.crs, f, fired, derived)

    def close(self) -> None:
        with ENGINE_LOCK:
            if self.closed:
                return
            self.closed = True
            try:
                self._drop_session()
            finally:
                dre.delete_ruleset(self._handle)


def evaluate(facts: dict[str, Any]) -> Decision:
    """Route facts with the process-wide active rule set (hot-reloaded; see casemgr/rules/service.py)."""
    from casemgr.rules.service import evaluate as service_evaluate

    return service_evaluate(facts)
