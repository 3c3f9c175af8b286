"""Parse and validate rules files (the schema is documented in docs/rules.md).

Parsing never stops at the first mistake: every problem is collected with `file:line` and the rule name,
so `casemgr rules check` can report them all at once. A rule set with any problem is refused whole.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

from casemgr.policyfile import LoadedYaml, PolicyFileError, Problem, load_yaml_text
from casemgr.rules import regex_gate
from casemgr.rules.facts import BASE_FACTS, CUAD_CLAUSES, FactSpec

PRIORITIES = ("low", "normal", "high", "urgent")
RULE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,79}$")
DERIVED_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
SOP_RE = re.compile(r"^policies/sop/[A-Za-z0-9_./-]+\.md$")

OPS_BY_KIND: dict[str, tuple[str, ...]] = {
    "str": ("eq", "ne", "in", "not_in", "matches", "imatches", "exists"),
    "num": ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists"),
    "bool": ("eq", "ne", "exists"),
    "list": ("contains", "contains_any", "contains_all"),
}
ALL_OPS = sorted({op for ops in OPS_BY_KIND.values() for op in ops})
ACTION_KEYS = (
    "queue",
    "owner_role",
    "priority",
    "sla_hours",
    "sla_max_hours",
    "task",
    "approval",
    "escalate",
    "notify",
    "derive",
)
RULE_KEYS = ("name", "description", "salience", "when", "then")
# Regex features whose meaning differs between durable-rules' own regex engine and Python's `re`;
# refused so the engine and the plain-Python evaluator always agree.
_REGEX_REFUSED = re.compile(r"\(\?|\\[bBAZzdDwWsS0-9]|(?<!\[)\^|\$|\{")


# ---------------------------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Cmp:
    fact: str
    op: str
    value: Any


@dataclass(frozen=True)
class Derived:
    name: str


@dataclass(frozen=True)
class All:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class AnyOf:
    items: tuple[Any, ...]


Cond = Cmp | Derived | All | AnyOf


@dataclass
class TaskSpec:
    name: str
    role: str
    sop: str | None
    kind: str  # task | approval


@dataclass
class Actions:
    queue: str | None = None
    owner_role: str | None = None
    priority: str | None = None
    sla_hours: float | None = None
    sla_max_hours: float | None = None
    tasks: list[TaskSpec] = field(default_factory=list)
    escalate: bool = False
    escalate_to: str | None = None
    escalate_reason: str | None = None
    notify: list[dict[str, str]] = field(default_factory=list)
    derive: list[str] = field(default_factory=list)


@dataclass
class Rule:
    name: str
    file: str
    line: int
    order: int  # global position: files in name order, rules in file order
    salience: int
    when: Cond
    then: Actions
    description: str = ""

    @property
    def rank_key(self) -> tuple[int, int]:
        # Conflict resolution: higher salience first, then earlier in file order.
        return (-self.salience, self.order)


@dataclass
class RuleSource:
    """The text of a rule set: {file name: YAML text}, in file-name order."""

    files: dict[str, str]

    @cached_property
    def version(self) -> str:
        canon = json.dumps(sorted(self.files.items()), ensure_ascii=False)
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:16]

    def bundle(self) -> str:
        return json.dumps({"files": dict(sorted(self.files.items()))}, ensure_ascii=False, indent=1)

    @classmethod
    def from_bundle(cls, text: str) -> RuleSource:
        data = json.loads(text)
        return cls(files=dict(sorted(data["files"].items())))

    @classmethod
    def from_path(cls, path: str | Path) -> RuleSource:
        p = Path(path)
        if p.is_dir():
            files = {f.name: f.read_text(encoding="utf-8") for f in sorted(p.glob("*.yaml"))}
            files.update({f.name: f.read_text(encoding="utf-8") for f in sorted(p.glob("*.yml"))})
            if not files:
                raise PolicyFileError([Problem(str(p), 0, "no *.yaml rules files in directory")])
            return cls(files=dict(sorted(files.items())))
        if not p.exists():
            raise PolicyFileError([Problem(str(p), 0, "file not found")])
        return cls(files={p.name: p.read_text(encoding="utf-8")})


@dataclass
class RuleSet:
    rules: list[Rule]
    source: RuleSource
    queues: dict[str, str]  # queue -> owner role (from org.yaml)

    @property
    def version(self) -> str:
        return self.source.version


# ---------------------------------------------------------------------------------------------- org


def load_org(policies_dir: Path | None = None) -> tuple[dict[str, str], set[str]]:
    """Queues (name -> owner role) and roles from policies/org.yaml."""
    if policies_dir is None:
        from casemgr.config import get_settings

        policies_dir = Path(get_settings().policies_dir)
    data = yaml.safe_load((Path(policies_dir) / "org.yaml").read_text(encoding="utf-8")) or {}
    roles = {r["name"] for r in data.get("roles", [])}
    queues = {q["name"]: q.get("owner_role", "agent") for q in data.get("queues", [])}
    return queues, roles


# ---------------------------------------------------------------------------------------------- parser


class _Parser:
    def __init__(
        self, loaded: LoadedYaml, queues: dict[str, str], roles: set[str], policies_dir: Path | None = None
    ) -> None:
        self.policies_dir = policies_dir
        self.loaded = loaded
        self.queues = queues
        self.roles = roles
        self.problems: list[Problem] = []
        self.rule_name: str | None = None

    def err(self, loc: tuple[Any, ...], msg: str) -> None:
        self.problems.append(Problem(self.loaded.file, self.loaded.line_of(loc), msg, self.rule_name))

    # -- conditions

    def cond(self, node: Any, loc: tuple[Any, ...]) -> Cond | None:
        if not isinstance(node, dict) or not node:
            self.err(loc, "a condition must be a non-empty mapping (fact: value, all:, any:, derived:)")
            return None
        parts: list[Cond] = []
        for key, value in node.items():
            sub = loc + (key,)
            c: Cond | None
            if key in ("all", "any"):
                if not isinstance(value, list) or not value:
                    self.err(sub, f"'{key}' needs a non-empty list of conditions")
                    continue
                items = [self.cond(v, sub + (i,)) for i, v in enumerate(value)]
                good = tuple(i for i in items if i is not None)
                if len(good) != len(items):
                    continue
                c = All(good) if key == "all" else AnyOf(good)
            elif key == "derived":
                names = value if isinstance(value, list) else [value]
                ds: list[Cond] = []
                for i, n in enumerate(names):
                    dloc = sub + (i,) if isinstance(value, list) else sub
                    if not isinstance(n, str) or not DERIVED_NAME_RE.match(n):
                        self.err(dloc, f"derived fact name {n!r} must match {DERIVED_NAME_RE.pattern}")
                    elif n in BASE_FACTS:
                        self.err(dloc, f"'{n}' is a base fact, not a derived one; match it directly")
                    else:
                        ds.append(Derived(n))
                if len(ds) != len(names):
                    continue
                c = ds[0] if len(ds) == 1 else All(tuple(ds))
            elif key in BASE_FACTS:
                c = self.fact_cond(BASE_FACTS[key], value, sub)
            elif key in ALL_OPS:
                self.err(sub, f"operator '{key}' must be nested under a fact name, e.g. amount: {{{key}: …}}")
                continue
            else:
                self.err(sub, f"unknown fact '{key}' (known: {', '.join(BASE_FACTS)}; or all/any/derived)")
                continue
            if c is not None:
                parts.append(c)
        if len(parts) != len(node):
            return None
        return parts[0] if len(parts) == 1 else All(tuple(parts))

    def fact_cond(self, spec: FactSpec, value: Any, loc: tuple[Any, ...]) -> Cond | None:
        if not isinstance(value, dict):
            if isinstance(value, list):
                self.err(loc, f"'{spec.name}' compared to a list: use {{in: [...]}} or {{contains_any: [...]}}")
                return None
            op = "contains" if spec.kind == "list" else "eq"
            return self.op_cond(spec, op, value, loc)
        if not value:
            self.err(loc, f"'{spec.name}' needs an operator mapping, e.g. {{eq: …}}")
            return None
        parts = [self.op_cond(spec, op, v, loc + (op,)) for op, v in value.items()]
        good = tuple(p for p in parts if p is not None)
        if len(good) != len(parts):
            return None
        return good[0] if len(good) == 1 else All(good)

    def literal_ok(self, spec: FactSpec, v: Any, loc: tuple[Any, ...]) -> bool:
        kind = "str" if spec.kind == "list" else spec.kind
        if kind == "num":
            if isinstance(v, bool) or not isinstance(v, int | float):
                self.err(loc, f"'{spec.name}' is a number; got {type(v).__name__} {v!r}")
                return False
            if not (v == 0 or 1e-4 <= abs(v) <= 1e15):
                self.err(loc, f"numbers in rules are 0 or between 1e-4 and 1e15 in magnitude; got {v}")
                return False
            if spec.name == "ai_confidence" and not 0 <= v <= 1:
                self.err(loc, f"ai_confidence is between 0 and 1; got {v}")
                return False
            return True
        if kind == "bool":
            if not isinstance(v, bool):
                self.err(loc, f"'{spec.name}' is true/false; got {type(v).__name__} {v!r}")
                return False
            return True
        if not isinstance(v, str):
            self.err(loc, f"'{spec.name}' is text; got {type(v).__name__} {v!r}")
            return False
        if spec.values and v not in spec.values:
            self.err(loc, f"'{v}' is not a known value of '{spec.name}' ({', '.join(spec.values)})")
            return False
        return True

    def op_cond(self, spec: FactSpec, op: str, v: Any, loc: tuple[Any, ...]) -> Cond | None:
        allowed = OPS_BY_KIND[spec.kind]
        if op not in allowed:
            why = "unknown operator" if op not in ALL_OPS else f"operator not valid for a {spec.kind} fact"
            self.err(loc, f"{why} '{op}' on '{spec.name}' (allowed: {', '.join(allowed)})")
            return None
        if op == "exists":
            if not isinstance(v, bool):
                self.err(loc, "'exists' takes true or false")
                return None
            return Cmp(spec.name, op, v)
        if op in ("in", "not_in", "contains_any", "contains_all"):
            if not isinstance(v, list) or not v:
                self.err(loc, f"'{op}' needs a non-empty list")
                return None
            if not all([self.literal_ok(spec, x, loc) for x in v]):
                return None
            return Cmp(spec.name, op, tuple(v))
        if op in ("matches", "imatches"):
            if not isinstance(v, str) or not v:
                self.err(loc, f"'{op}' needs a regular expression string")
                return None
            bad = _REGEX_REFUSED.search(v)
            if bad:
                self.err(loc, f"bad regex {v!r}: '{bad.group(0)}' is not supported (see docs/rules.md)")
                return None
            try:
                re.compile(v)
            except re.error as exc:
                self.err(loc, f"bad regex {v!r}: {exc}")
                return None
            unsafe = regex_gate.problem(v)  # issue 18: no pattern that can hang the engine or backtrack
            if unsafe:
                self.err(loc, f"unsafe regex {v!r}: {unsafe}")
                return None
            return Cmp(spec.name, op, v)
        if spec.kind == "list" and spec.name == "clauses" and isinstance(v, str) and v not in CUAD_CLAUSES:
            self.err(loc, f"unknown clause '{v}' (known: {', '.join(CUAD_CLAUSES)})")
            return None
        if not self.literal_ok(spec, v, loc):
            return None
        return Cmp(spec.name, op, v)

    # -- actions

    def role_ok(self, role: Any, loc: tuple[Any, ...]) -> bool:
        if not isinstance(role, str) or role not in self.roles:
            self.err(loc, f"unknown role {role!r} (roles in org.yaml: {', '.join(sorted(self.roles))})")
            return False
        return True

    def hours(self, v: Any, loc: tuple[Any, ...], key: str) -> float | None:
        if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < 1e6:
            self.err(loc, f"'{key}' must be a positive number of hours; got {v!r}")
            return None
        return float(v)

    def task_list(self, v: Any, loc: tuple[Any, ...], kind: str, out: Actions) -> None:
        items = v if isinstance(v, list) else [v]
        for i, t in enumerate(items):
            tloc = loc + (i,) if isinstance(v, list) else loc
            if not isinstance(t, dict):
                self.err(tloc, f"'{kind}' needs a mapping with name, role and sop")
                continue
            unknown = set(t) - {"name", "role", "sop"}
            if unknown:
                self.err(tloc, f"unknown key(s) in {kind}: {', '.join(sorted(map(str, unknown)))}")
                continue
            name, role, sop = t.get("name"), t.get("role"), t.get("sop")
            ok = True
            if not isinstance(name, str) or not name.strip():
                self.err(tloc, f"{kind} needs a 'name'")
                ok = False
            if not self.role_ok(role, tloc + ("role",)):
                ok = False
            if sop is not None and (not isinstance(sop, str) or not SOP_RE.match(sop) or ".." in sop):
                self.err(tloc + ("sop",), f"sop must be a path like policies/sop/<name>.md; got {sop!r}")
                ok = False
            elif sop is not None and self.policies_dir is not None:
                if not (self.policies_dir / sop.removeprefix("policies/")).is_file():
                    self.err(tloc + ("sop",), f"sop {sop!r} does not exist")
                    ok = False
            if kind == "task" and sop is None:
                self.err(tloc, "task needs an 'sop' link (policies/sop/<name>.md)")
                ok = False
            if ok:
                out.tasks.append(TaskSpec(name=name, role=role, sop=sop, kind=kind))

    def actions(self, node: Any, loc: tuple[Any, ...]) -> Actions | None:
        if not isinstance(node, dict) or not node:
            self.err(loc, "'then' must be a non-empty mapping of actions")
            return None
        before = len(self.problems)
        a = Actions()
        for key, v in node.items():
            sub = loc + (key,)
            if key == "queue":
                if not isinstance(v, str) or v not in self.queues:
                    self.err(sub, f"unknown queue {v!r} (queues in org.yaml: {', '.join(self.queues)})")
                else:
                    a.queue = v
            elif key == "owner_role":
                if self.role_ok(v, sub):
                    a.owner_role = v
            elif key == "priority":
                if v not in PRIORITIES:
                    self.err(sub, f"priority must be one of {', '.join(PRIORITIES)}; got {v!r}")
                else:
                    a.priority = v
            elif key in ("sla_hours", "sla_max_hours"):
                setattr(a, key, self.hours(v, sub, key))
            elif key in ("task", "approval"):
                self.task_list(v, sub, key, a)
            elif key == "escalate":
                if v is True:
                    a.escalate = True
                elif isinstance(v, dict) and set(v) <= {"to", "reason"}:
                    if "to" in v and not self.role_ok(v["to"], sub + ("to",)):
                        continue
                    a.escalate, a.escalate_to = True, v.get("to")
                    a.escalate_reason = str(v["reason"]) if v.get("reason") is not None else None
                else:
                    self.err(sub, "escalate takes true or {to: role, reason: text}")
            elif key == "notify":
                items = v if isinstance(v, list) else [v]
                for i, n in enumerate(items):
                    nloc = sub + (i,) if isinstance(v, list) else sub
                    if not isinstance(n, dict) or set(n) - {"role", "message"} or "role" not in n:
                        self.err(nloc, "notify takes {role: role, message: text}")
                    elif self.role_ok(n["role"], nloc + ("role",)):
                        a.notify.append({"role": n["role"], "message": str(n.get("message") or "")})
            elif key == "derive":
                names = v if isinstance(v, list) else [v]
                for i, n in enumerate(names):
                    dloc = sub + (i,) if isinstance(v, list) else sub
                    if not isinstance(n, str) or not DERIVED_NAME_RE.match(n):
                        self.err(dloc, f"derived fact name {n!r} must match {DERIVED_NAME_RE.pattern}")
                    elif n in BASE_FACTS:
                        self.err(dloc, f"cannot derive '{n}': it is a base fact name")
                    elif n not in a.derive:
                        a.derive.append(n)
            else:
                self.err(sub, f"unknown action '{key}' (known: {', '.join(ACTION_KEYS)})")
        return a if len(self.problems) == before else None

    # -- rules

    def rules(self, start_order: int) -> list[Rule]:
        data = self.loaded.data
        if not isinstance(data, dict) or "rules" not in data:
            self.err((), "a rules file is a mapping with a 'rules:' list")
            return []
        extra = set(data) - {"rules", "description", "version"}
        if extra:
            self.err((sorted(map(str, extra))[0],), f"unknown top-level key(s): {', '.join(sorted(extra))}")
        items = data["rules"]
        if not isinstance(items, list):
            self.err(("rules",), "'rules' must be a list")
            return []
        out: list[Rule] = []
        for i, r in enumerate(items):
            loc = ("rules", i)
            self.rule_name = None
            if not isinstance(r, dict):
                self.err(loc, "each rule is a mapping with name, when, then")
                continue
            name = r.get("name")
            if not isinstance(name, str) or not RULE_NAME_RE.match(name):
                self.err(loc + ("name",), f"rule name {name!r} must match {RULE_NAME_RE.pattern}")
                continue
            self.rule_name = name
            before = len(self.problems)
            for k in r:
                if k not in RULE_KEYS:
                    self.err(loc + (k,), f"unknown rule key '{k}' (known: {', '.join(RULE_KEYS)})")
            sal = r.get("salience", 0)
            if isinstance(sal, bool) or not isinstance(sal, int) or not -10000 <= sal <= 10000:
                self.err(loc + ("salience",), f"salience must be an integer in -10000..10000; got {sal!r}")
            if "when" not in r:
                self.err(loc, "rule needs a 'when' condition")
            if "then" not in r:
                self.err(loc, "rule needs 'then' actions")
            when = self.cond(r["when"], loc + ("when",)) if "when" in r else None
            then = self.actions(r["then"], loc + ("then",)) if "then" in r else None
            if len(self.problems) != before or when is None or then is None:
                continue
            out.append(
                Rule(
                    name=name,
                    file=self.loaded.file,
                    line=self.loaded.line_of(loc),
                    order=start_order + i,
                    salience=sal,
                    when=when,
                    then=then,
                    description=str(r.get("description") or ""),
                )
            )
        self.rule_name = None
        return out


def derived_used(c: Cond) -> set[str]:
    if isinstance(c, Derived):
        return {c.name}
    if isinstance(c, All | AnyOf):
        return set().union(*(derived_used(i) for i in c.items))
    return set()


def facts_used(c: Cond) -> list[str]:
    if isinstance(c, Cmp):
        return [c.fact]
    if isinstance(c, All | AnyOf):
        out: list[str] = []
        for i in c.items:
            out.extend(f for f in facts_used(i) if f not in out)
        return out
    return []


def parse_source(
    source: RuleSource, *, policies_dir: Path | None = None, org: tuple[dict[str, str], set[str]] | None = None
) -> tuple[RuleSet | None, list[Problem]]:
    """Parse and cross-check all files. Returns (ruleset, []) or (None, problems)."""
    if policies_dir is None:
        from casemgr.config import get_settings

        policies_dir = Path(get_settings().policies_dir)
    queues, roles = org if org is not None else load_org(policies_dir)
    problems: list[Problem] = []
    rules: list[Rule] = []
    order = 0
    for fname, text in source.files.items():
        try:
            loaded = load_yaml_text(text, fname)
        except PolicyFileError as exc:
            problems.extend(exc.problems)
            continue
        p = _Parser(loaded, queues, roles, policies_dir)
        rules.extend(p.rules(order))
        order += 10000
        problems.extend(p.problems)
    # Cross-file checks.
    seen: dict[str, Rule] = {}
    for r in rules:
        if r.name in seen:
            first = seen[r.name]
            problems.append(
                Problem(r.file, r.line, f"duplicate rule name (first defined at {first.file}:{first.line})", r.name)
            )
        else:
            seen[r.name] = r
    derived_by: dict[str, Rule] = {}
    used_by: dict[str, Rule] = {}
    for r in rules:
        for d in r.then.derive:
            derived_by.setdefault(d, r)
        for d in sorted(derived_used(r.when)):
            used_by.setdefault(d, r)
    for d, r in used_by.items():
        if d not in derived_by:
            problems.append(Problem(r.file, r.line, f"derived fact '{d}' is used but no rule derives it", r.name))
    for d, r in derived_by.items():
        if d not in used_by:
            problems.append(
                Problem(r.file, r.line, f"derived fact '{d}' is derived but no rule uses it", r.name)
            )
    problems.sort(key=lambda p: (p.file, p.line))
    if problems:
        return None, problems
    return RuleSet(rules=rules, source=source, queues=queues), []


def load_ruleset(source: RuleSource, **kw: Any) -> RuleSet:
    rs, problems = parse_source(source, **kw)
    if rs is None:
        raise PolicyFileError(problems)
    return rs
