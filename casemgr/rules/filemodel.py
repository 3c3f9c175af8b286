"""Pydantic models of a rules file (the format is documented in docs/rules.md).

Validating a file both checks it and builds its syntax tree: a condition validates into Cmp/All/AnyOf/Derived
nodes, `then` into Actions. Every mistake is reported at its own location (pydantic collects them all), with
a message written for people (`policyfile.problem`); casemgr.policyfile maps each location to `file:line`.
Checks that need other files (queues and roles from org.yaml, SOP files) read them from the validation
context: {"queues": {name: owner role}, "roles": {names}, "policies_dir": Path | None}.

The condition model is generated from the fact vocabulary (casemgr.rules.facts.BASE_FACTS): one optional
field per fact, whose operators and literals follow the fact's kind.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, ClassVar, ForwardRef, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    PlainValidator,
    PrivateAttr,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    create_model,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from casemgr.cases.enums import Priority
from casemgr.casetypes import sop as sop_links
from casemgr.policyfile import PROBLEM_TYPE, problem
from casemgr.rules import regex_gate
from casemgr.rules.facts import BASE_FACTS, CUAD_CLAUSES, FactSpec

PRIORITIES = Priority.values()
RULE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,79}$")
DERIVED_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,59}$")
SOP_RE = re.compile(r"^policies/sop/[A-Za-z0-9_./-]+\.md$")
SALIENCE_RANGE = (-10000, 10000)
MAX_HOURS = 1e6
OPS_BY_KIND: dict[str, tuple[str, ...]] = {
    "str": ("eq", "ne", "in", "not_in", "matches", "imatches", "exists"),
    "num": ("eq", "ne", "gt", "gte", "lt", "lte", "in", "not_in", "exists"),
    "bool": ("eq", "ne", "exists"),
    "list": ("contains", "contains_any", "contains_all"),
}
ALL_OPS = sorted({op for ops in OPS_BY_KIND.values() for op in ops})
LIST_OPS = ("in", "not_in", "contains_any", "contains_all")
REGEX_OPS = ("matches", "imatches")
ACTION_KEYS = ("queue", "owner_role", "priority", "sla_hours", "sla_max_hours", "task", "approval", "escalate",
               "notify", "derive")
RULE_KEYS = ("name", "description", "salience", "when", "then")
TOP_KEYS = ("rules", "description", "version")
# Regex features whose meaning differs between durable-rules' own regex engine and Python's `re`;
# refused so the engine and the plain-Python evaluator always agree.
_REGEX_REFUSED = re.compile(r"\(\?|\\[bBAZzdDwWsS0-9]|(?<!\[)\^|\$|\{")
T = TypeVar("T")


# ---------------------------------------------------------------------------------------------- base


def _again(errors: list[Any]) -> ValidationError:
    """A ValidationError from error dicts (some rewritten); pydantic prefixes the outer location to each."""
    details: list[InitErrorDetails] = []
    for e in errors:
        loc, kind = tuple(e["loc"]), e["type"]
        if isinstance(kind, PydanticCustomError):
            details.append(InitErrorDetails(type=kind, loc=loc, input=e.get("input")))
        elif kind == PROBLEM_TYPE:
            details.append(InitErrorDetails(type=problem(e["msg"]), loc=loc, input=e.get("input")))
        else:
            d = InitErrorDetails(type=kind, loc=loc, input=e.get("input"))
            if e.get("ctx"):
                d["ctx"] = e["ctx"]
            details.append(d)
    return ValidationError.from_exception_data("rules", details)


class _Node(BaseModel):
    """A mapping in a rules file: unknown keys, missing keys and non-mappings get messages of their own.

    Subclasses set the templates ({key}, {field}) or override the classmethods when a message needs logic.
    """

    model_config = ConfigDict(extra="forbid")
    NOT_MAPPING: ClassVar[str] = "expected a mapping"
    EMPTY: ClassVar[str | None] = None  # message when an empty mapping is refused (None: allowed)
    UNKNOWN: ClassVar[str] = "unknown key '{key}'"
    MISSING: ClassVar[str] = "'{field}' is required"
    _order: list[str] = PrivateAttr(default_factory=list)  # keys as written (the tree keeps the file's order)

    @classmethod
    def _unknown(cls, key: str) -> str:
        return cls.UNKNOWN.format(key=key)

    @classmethod
    def _missing(cls, field: str) -> str:
        return cls.MISSING.format(field=field)

    @model_validator(mode="wrap")
    @classmethod
    def _messages(cls, data: Any, handler: Callable[[Any], Any]) -> Any:
        if not isinstance(data, dict):
            raise problem(cls.NOT_MAPPING)
        if not data and cls.EMPTY:
            raise problem(cls.EMPTY)
        try:
            node = handler(data)
        except ValidationError as exc:
            errors: list[Any] = []
            for e in exc.errors():
                loc = tuple(e["loc"])
                if len(loc) == 1 and e["type"] == "extra_forbidden":
                    errors.append({**e, "type": problem(cls._unknown(str(loc[0])))})
                elif len(loc) == 1 and e["type"] == "missing":  # reported at the mapping that lacks the key
                    errors.append({**e, "type": problem(cls._missing(str(loc[0]))), "loc": ()})
                else:
                    errors.append(e)
            raise _again(errors) from None
        node._order = [str(k) for k in data]
        return node


def _fail(message: str) -> Any:
    raise problem(message)


def _one_or_many(validate_one: Callable[..., Any]) -> WrapValidator:
    """`x` or `[x, ...]`: a single item is validated where it stands (its errors point at it), a list per item.

    `validate_one(value, context=)` is a model's model_validate or a TypeAdapter's validate_python."""

    def check(value: Any, handler: Callable[[Any], Any], info: ValidationInfo) -> list[Any]:
        if isinstance(value, list):
            return list(handler(value))
        return [validate_one(value, context=info.context)]

    return WrapValidator(check)


def _ctx(info: ValidationInfo) -> dict[str, Any]:
    return info.context or {}


# ---------------------------------------------------------------------------------------------- literals


def _literal(spec: FactSpec) -> Callable[[Any, ValidationInfo], Any]:
    kind = "str" if spec.kind == "list" else spec.kind

    def check(v: Any, info: ValidationInfo) -> Any:
        if kind == "num":
            if isinstance(v, bool) or not isinstance(v, int | float):
                _fail(f"'{spec.name}' is a number; got {type(v).__name__} {v!r}")
            if not (v == 0 or 1e-4 <= abs(v) <= 1e15):
                _fail(f"numbers in rules are 0 or between 1e-4 and 1e15 in magnitude; got {v}")
            if spec.name == "ai_confidence" and not 0 <= v <= 1:
                _fail(f"ai_confidence is between 0 and 1; got {v}")
            return v
        if kind == "bool":
            if not isinstance(v, bool):
                _fail(f"'{spec.name}' is true/false; got {type(v).__name__} {v!r}")
            return v
        if not isinstance(v, str):
            _fail(f"'{spec.name}' is text; got {type(v).__name__} {v!r}")
        # Case type names are data (policies/case-types.yaml): the parse context carries them.
        values = spec.values or (tuple(sorted(_ctx(info).get("case_types") or ())) if spec.name == "type" else None)
        if values and v not in values:
            _fail(f"'{v}' is not a known value of '{spec.name}' ({', '.join(values)})")
        return v

    return check


def _clause(v: Any) -> Any:
    if isinstance(v, str) and v not in CUAD_CLAUSES:
        _fail(f"unknown clause '{v}' (known: {', '.join(CUAD_CLAUSES)})")
    return v


def _exists(v: Any) -> bool:
    if not isinstance(v, bool):
        _fail("'exists' takes true or false")
    return v


def _regex(op: str) -> Callable[[Any], str]:
    def check(v: Any) -> str:
        if not isinstance(v, str) or not v:
            _fail(f"'{op}' needs a regular expression string")
        bad = _REGEX_REFUSED.search(v)
        if bad:
            _fail(f"bad regex {v!r}: '{bad.group(0)}' is not supported (see docs/rules.md)")
        try:
            re.compile(v)
        except re.error as exc:
            _fail(f"bad regex {v!r}: {exc}")
        unsafe = regex_gate.problem(v)  # issue 18: no pattern that can hang the engine or backtrack
        if unsafe:
            _fail(f"unsafe regex {v!r}: {unsafe}")
        return v

    return check


def _non_empty_list(message: str) -> WrapValidator:
    def check(value: Any, handler: Callable[[Any], Any]) -> Any:
        if not isinstance(value, list) or not value:
            _fail(message)
        return handler(value)

    return WrapValidator(check)


def _derived_name(base_fact_message: str) -> Callable[[Any], str]:
    def check(n: Any) -> str:
        if not isinstance(n, str) or not DERIVED_NAME_RE.match(n):
            _fail(f"derived fact name {n!r} must match {DERIVED_NAME_RE.pattern}")
        if n in BASE_FACTS:
            _fail(base_fact_message.format(name=n))
        return n

    return check


DerivedRef = Annotated[Any, PlainValidator(_derived_name("'{name}' is a base fact, not a derived one; match it directly"))]
DeriveName = Annotated[Any, PlainValidator(_derived_name("cannot derive '{name}': it is a base fact name"))]


# ---------------------------------------------------------------------------------------------- conditions

CONDITION_SHAPE = "a condition must be a non-empty mapping (fact: value, all:, any:, derived:)"


class _Ops(_Node):
    """The operators of one fact, e.g. amount: {gt: 1000, lte: 5000}."""

    spec: ClassVar[FactSpec]

    @classmethod
    def _unknown(cls, key: str) -> str:
        allowed = OPS_BY_KIND[cls.spec.kind]
        why = "unknown operator" if key not in ALL_OPS else f"operator not valid for a {cls.spec.kind} fact"
        return f"{why} '{key}' on '{cls.spec.name}' (allowed: {', '.join(allowed)})"

    def tree(self) -> Any:
        from casemgr.rules.schema import All, Cmp

        parts = []
        for op in self._order:
            value = getattr(self, op)
            parts.append(Cmp(self.spec.name, op, tuple(value) if isinstance(value, list) else value))
        return parts[0] if len(parts) == 1 else All(tuple(parts))


def _op_type(spec: FactSpec, op: str) -> Any:
    literal = _literal(spec)
    if op == "exists":
        return Annotated[Any, PlainValidator(_exists)]
    if op in LIST_OPS:
        return Annotated[list[Annotated[Any, PlainValidator(literal)]], _non_empty_list(f"'{op}' needs a non-empty list")]
    if op in REGEX_OPS:
        return Annotated[Any, PlainValidator(_regex(op))]
    if spec.name == "clauses":
        return Annotated[Any, PlainValidator(lambda v, info: literal(_clause(v), info))]
    return Annotated[Any, PlainValidator(literal)]


def _fact_type(spec: FactSpec) -> Any:
    """A fact's test: a literal (eq; contains for a list fact) or a mapping of operators. Validates into a tree."""
    ops_model: type[_Ops] = create_model(  # type: ignore[call-overload]
        f"Ops_{spec.name}", __base__=_Ops, **{op: (_op_type(spec, op), None) for op in OPS_BY_KIND[spec.kind]},
    )
    ops_model.spec = spec
    ops_model.EMPTY = f"'{spec.name}' needs an operator mapping, e.g. {{eq: …}}"
    default_op = "contains" if spec.kind == "list" else "eq"

    def check(value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, list):
            _fail(f"'{spec.name}' compared to a list: use {{in: [...]}} or {{contains_any: [...]}}")
        if isinstance(value, dict):
            return ops_model.model_validate(value, context=info.context).tree()
        try:
            return ops_model.model_validate({default_op: value}, context=info.context).tree()
        except ValidationError as exc:  # a bare literal: its errors point at the value, not at the implied `eq`
            raise _again([{**e, "loc": tuple(e["loc"])[1:]} for e in exc.errors()]) from None

    return Annotated[Any, PlainValidator(check)]


class _ConditionBase(_Node):
    NOT_MAPPING: ClassVar[str] = CONDITION_SHAPE
    EMPTY: ClassVar[str | None] = CONDITION_SHAPE

    @classmethod
    def _unknown(cls, key: str) -> str:
        if key in ALL_OPS:
            return f"operator '{key}' must be nested under a fact name, e.g. amount: {{{key}: …}}"
        return f"unknown fact '{key}' (known: {', '.join(BASE_FACTS)}; or all/any/derived)"

    def tree(self) -> Any:
        from casemgr.rules.schema import All, AnyOf, Derived

        parts: list[Any] = []
        for key in self._order:
            value = getattr(self, key)
            if key in ("all", "any"):
                items = tuple(c.tree() for c in value)
                parts.append(All(items) if key == "all" else AnyOf(items))
            elif key == "derived":
                ds = [Derived(n) for n in value]
                parts.append(ds[0] if len(ds) == 1 else All(tuple(ds)))
            else:
                parts.append(value)  # a fact's test validated into its tree already
        return parts[0] if len(parts) == 1 else All(tuple(parts))


def _condition_model() -> type[_ConditionBase]:
    """Condition: all/any (lists of conditions), derived (names), and one field per base fact."""
    ref: Any = ForwardRef("Condition")
    fields: dict[str, Any] = {
        key: (Annotated[list[ref], _non_empty_list(f"'{key}' needs a non-empty list of conditions")], None)
        for key in ("all", "any")
    }
    fields["derived"] = (Annotated[list[DerivedRef], _one_or_many(TypeAdapter(DerivedRef).validate_python)], None)
    fields.update({name: (_fact_type(spec), None) for name, spec in BASE_FACTS.items()})
    model: type[_ConditionBase] = create_model("Condition", __base__=_ConditionBase, **fields)  # type: ignore[call-overload]
    model.model_rebuild(_types_namespace={"Condition": model})
    return model


Condition = _condition_model()


# ---------------------------------------------------------------------------------------------- actions


def _role(v: Any, info: ValidationInfo) -> str:
    roles = _ctx(info).get("roles", set())
    if not isinstance(v, str) or v not in roles:
        _fail(f"unknown role {v!r} (roles in org.yaml: {', '.join(sorted(roles))})")
    return v


def _queue(v: Any, info: ValidationInfo) -> str:
    queues = _ctx(info).get("queues", {})
    if not isinstance(v, str) or v not in queues:
        _fail(f"unknown queue {v!r} (queues in org.yaml: {', '.join(queues)})")
    return v


def _priority(v: Any) -> str:
    if v not in PRIORITIES:
        _fail(f"priority must be one of {', '.join(PRIORITIES)}; got {v!r}")
    return v


def _hours(v: Any, info: ValidationInfo) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not 0 < v < MAX_HOURS:
        _fail(f"'{info.field_name}' must be a positive number of hours; got {v!r}")
    return float(v)


def _sop(v: Any, info: ValidationInfo) -> str:
    if not isinstance(v, str) or not SOP_RE.match(v) or ".." in v:
        _fail(f"sop must be a path like policies/sop/<name>.md; got {v!r}")
    policies_dir: Path | None = _ctx(info).get("policies_dir")
    if policies_dir is not None and sop_links.problem(policies_dir, v):  # resolved: no link out of sop/
        _fail(f"sop {v!r} does not exist")
    return v


def _text(v: Any) -> str:
    return "" if v is None else str(v)


Role = Annotated[Any, PlainValidator(_role)]
Text = Annotated[Any, PlainValidator(_text)]
Sop = Annotated[Any, PlainValidator(_sop)]


class ApprovalIn(_Node):
    """approval: {name, role, sop?}."""

    KIND: ClassVar[str] = "approval"
    NOT_MAPPING: ClassVar[str] = "'approval' needs a mapping with name, role and sop"
    UNKNOWN: ClassVar[str] = "unknown key '{key}' in approval (known: name, role, sop)"
    MISSING: ClassVar[str] = "approval needs a '{field}'"
    name: Any
    role: Role
    sop: Sop = None

    @model_validator(mode="after")
    def _named(self) -> ApprovalIn:
        if not isinstance(self.name, str) or not self.name.strip():
            raise problem(f"{self.KIND} needs a 'name'")
        return self


class TaskIn(ApprovalIn):
    """task: {name, role, sop} (a task always links its SOP)."""

    KIND: ClassVar[str] = "task"
    NOT_MAPPING: ClassVar[str] = "'task' needs a mapping with name, role and sop"
    UNKNOWN: ClassVar[str] = "unknown key '{key}' in task (known: name, role, sop)"
    MISSING: ClassVar[str] = "task needs a '{field}'"
    sop: Sop

    @classmethod
    def _missing(cls, field: str) -> str:
        return "task needs an 'sop' link (policies/sop/<name>.md)" if field == "sop" else super()._missing(field)


ESCALATE_SHAPE = "escalate takes true or {to: role, reason: text}"
NOTIFY_SHAPE = "notify takes {role: role, message: text}"


class EscalateIn(_Node):
    NOT_MAPPING: ClassVar[str] = ESCALATE_SHAPE
    UNKNOWN: ClassVar[str] = ESCALATE_SHAPE + "; unknown key '{key}'"
    to: Role | None = None
    reason: Any = None


def _escalate(v: Any, info: ValidationInfo) -> EscalateIn:
    return EscalateIn() if v is True else EscalateIn.model_validate(v, context=info.context)


class NotifyIn(_Node):
    NOT_MAPPING: ClassVar[str] = NOTIFY_SHAPE
    UNKNOWN: ClassVar[str] = NOTIFY_SHAPE + "; unknown key '{key}'"
    MISSING: ClassVar[str] = NOTIFY_SHAPE
    role: Role
    message: Text = ""


class Then(_Node):
    """A rule's actions."""

    NOT_MAPPING: ClassVar[str] = "'then' must be a non-empty mapping of actions"
    EMPTY: ClassVar[str | None] = NOT_MAPPING
    UNKNOWN: ClassVar[str] = "unknown action '{key}' (known: " + ", ".join(ACTION_KEYS) + ")"
    queue: Annotated[Any, PlainValidator(_queue)] = None
    owner_role: Role = None
    priority: Annotated[Any, PlainValidator(_priority)] = None
    sla_hours: Annotated[Any, PlainValidator(_hours)] = None
    sla_max_hours: Annotated[Any, PlainValidator(_hours)] = None
    task: Annotated[list[TaskIn], _one_or_many(TaskIn.model_validate)] = []
    approval: Annotated[list[ApprovalIn], _one_or_many(ApprovalIn.model_validate)] = []
    escalate: Annotated[Any, PlainValidator(_escalate)] = None
    notify: Annotated[list[NotifyIn], _one_or_many(NotifyIn.model_validate)] = []
    derive: Annotated[list[DeriveName], _one_or_many(TypeAdapter(DeriveName).validate_python)] = []

    def tree(self) -> Any:
        from casemgr.rules.schema import Actions, TaskSpec

        a = Actions(queue=self.queue, owner_role=self.owner_role, priority=self.priority, sla_hours=self.sla_hours,
                    sla_max_hours=self.sla_max_hours)
        for key in self._order:  # tasks and approvals in the order the file lists them
            if key in ("task", "approval"):
                a.tasks.extend(TaskSpec(name=t.name, role=t.role, sop=t.sop, kind=key) for t in getattr(self, key))
        if self.escalate is not None:
            a.escalate, a.escalate_to = True, self.escalate.to
            a.escalate_reason = str(self.escalate.reason) if self.escalate.reason is not None else None
        a.notify = [{"role": n.role, "message": n.message} for n in self.notify]
        a.derive = list(dict.fromkeys(self.derive))
        return a


# ---------------------------------------------------------------------------------------------- rules


def _rule_name(v: Any) -> str:
    if not isinstance(v, str) or not RULE_NAME_RE.match(v):
        _fail(f"rule name {v!r} must match {RULE_NAME_RE.pattern}")
    return v


def _salience(v: Any) -> int:
    lo, hi = SALIENCE_RANGE
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        _fail(f"salience must be an integer in {lo}..{hi}; got {v!r}")
    return v


def _rules_list(value: Any, handler: Callable[[Any], Any]) -> Any:
    if not isinstance(value, list):
        _fail("'rules' must be a list")
    return handler(value)


class RuleIn(_Node):
    NOT_MAPPING: ClassVar[str] = "each rule is a mapping with name, when, then"
    UNKNOWN: ClassVar[str] = "unknown rule key '{key}' (known: " + ", ".join(RULE_KEYS) + ")"
    name: Annotated[Any, PlainValidator(_rule_name)]
    description: Text = ""
    salience: Annotated[Any, PlainValidator(_salience)] = 0
    when: Condition  # type: ignore[valid-type]  # generated from the fact vocabulary
    then: Then

    @classmethod
    def _missing(cls, field: str) -> str:
        return {"when": "rule needs a 'when' condition", "then": "rule needs 'then' actions",
                "name": f"rule needs a 'name' matching {RULE_NAME_RE.pattern}"}.get(field, f"rule needs '{field}'")


class RulesFile(_Node):
    """A rules file: {rules: [...], description?, version?}."""

    NOT_MAPPING: ClassVar[str] = "a rules file is a mapping with a 'rules:' list"
    MISSING: ClassVar[str] = NOT_MAPPING
    UNKNOWN: ClassVar[str] = "unknown top-level key '{key}' (known: " + ", ".join(TOP_KEYS) + ")"
    rules: Annotated[list[RuleIn], WrapValidator(_rules_list)]
    description: Any = None
    version: Any = None


def rule_name_at(data: Any, loc: tuple[Any, ...]) -> str | None:
    """The name of the rule a location is in (None outside a rule or when the name itself is invalid)."""
    if len(loc) < 2 or loc[0] != "rules" or not isinstance(data, dict) or not isinstance(loc[1], int):
        return None
    rules = data.get("rules")
    if not isinstance(rules, list) or loc[1] >= len(rules) or not isinstance(rules[loc[1]], dict):
        return None
    name = rules[loc[1]].get("name")
    return name if isinstance(name, str) and RULE_NAME_RE.match(name) else None
