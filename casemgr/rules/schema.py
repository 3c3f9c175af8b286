"""Rule sets: their source text, validation into a syntax tree, and the cross-file checks.

Each file is validated by the pydantic models in casemgr.rules.filemodel (the format is documented in
docs/rules.md). Validation never stops at the first mistake: every problem is collected with `file:line` and
the rule name, so `casemgr rules check` can report them all at once. A rule set with any problem is refused
whole.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import yaml

from casemgr.policyfile import PolicyFileError, Problem, load_yaml_text, validate

FILE_ORDER_STRIDE = 10000  # rule order: files in name order, rules in file order (Rule.order)

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


def load_case_type_names(policies_dir: Path) -> set[str]:
    """Case type names from policies/case-types.yaml: the values a rule's `type:` may name (types are data)."""
    path = Path(policies_dir) / "case-types.yaml"
    if not path.exists():
        return set()  # a rules-only directory (tests, rules check on a copy): any type name is accepted
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(t.get("name")) for t in data.get("case_types", []) if isinstance(t, dict) and t.get("name")}


# ---------------------------------------------------------------------------------------------- parse


def _parse_file(fname: str, text: str, start_order: int, context: dict[str, Any]) -> list[Rule]:
    """Validate one file against the pydantic file model (every problem at file:line, with its rule name)."""
    # Imported here: building the models takes ~0.25 s, paid only by processes that parse rules.
    from casemgr.rules.filemodel import RulesFile, rule_name_at

    loaded = load_yaml_text(text, fname)
    model = validate(loaded, RulesFile, context=context, rule_of=lambda loc: rule_name_at(loaded.data, loc))
    return [
        Rule(name=r.name, file=fname, line=loaded.line_of(("rules", i)), order=start_order + i, salience=r.salience,
             when=cast(Any, r.when).tree(), then=r.then.tree(), description=r.description)
        for i, r in enumerate(model.rules)
    ]


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
    context = {"queues": queues, "roles": roles, "policies_dir": policies_dir,
               "case_types": load_case_type_names(policies_dir)}
    problems: list[Problem] = []
    rules: list[Rule] = []
    for n, (fname, text) in enumerate(source.files.items()):
        try:
            rules.extend(_parse_file(fname, text, n * FILE_ORDER_STRIDE, context))
        except PolicyFileError as exc:
            problems.extend(exc.problems)
    files_ok = not problems
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
        # With a file refused, its derivations are unknown: "used but never derived" would be a guess.
        if d not in derived_by and files_ok:
            problems.append(Problem(r.file, r.line, f"derived fact '{d}' is used but no rule derives it", r.name))
    for d, r in derived_by.items():
        if d not in used_by and files_ok:
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
