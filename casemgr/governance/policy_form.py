"""The AI policy as a form for people who do not write YAML (issue 21), generated from the schema.

Every input comes from a field of policy.AIPolicy (walked through pydantic's model_fields), and its help text is
the field's description, so the form cannot drift from the schema: a field whose shape the walker does not know
raises TypeError (tests/governance/test_policy_form.py renders the form and checks every schema field is there).

Shapes: a nested model is a section; `dict[str, Model]` keyed by a known vocabulary (the decision kinds) is a
matrix (one row per key, one column per leaf field); `dict[str, float]` inside it (thresholds by category or case
type) is a second table (rows x the vocabulary's keys); `list[Model]` (sampling strata) is a table of rows plus
blank ones; Literal is a select, list[Literal] checkboxes, bool a checkbox, numbers, dates and text inputs.

Input names are dotted paths: `review.sample_rate`, `decisions.classify.mode`,
`decisions.classify.thresholds_by_category.credit_reporting`, `review.strata.0.rate`.

The form never validates on its own: `to_text` writes the values into the base YAML text (a ruamel round trip
that keeps its comments and layout, so the text diff shows only what changed) and that text goes through
policy.parse_policy exactly like the YAML view. `field_problems` maps the file:line problems back to inputs.
"""

from __future__ import annotations

import io
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal, Union

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from casemgr.governance.enums import Widget
from casemgr.governance.policy import DECISION_KINDS, AIPolicy
from casemgr.policyfile import Problem

BLANK_ROWS = 2  # empty rows offered under a list of models (a new sampling stratum)
MAX_ROWS = 30  # rows read back from a submitted form per list

Values = Mapping[str, Any]  # input name -> str, or list[str] for checkboxes (as a browser submits them)


def _registry() -> Any:
    from casemgr.casetypes.registry import get_registry

    return get_registry()


def _categories() -> tuple[str, ...]:
    cats: list[str] = []
    for ct in _registry().case_types.values():
        for f in ct.fields:
            if f.name == "category" and f.choices:
                cats.extend(c for c in f.choices if c not in cats)
    return tuple(cats)


def _case_types() -> tuple[str, ...]:
    return tuple(_registry().case_types)


def _roles() -> tuple[str, ...]:
    return tuple(sorted(_registry().org.role_names))


# The vocabulary a dict field is keyed by, and the choices a free-text field really has (both checked on
# validation elsewhere; here they only decide what the form offers). A new dict field needs an entry here, or
# the walker refuses it (the drift test fails).
KEYS: dict[str, Callable[[], tuple[str, ...]]] = {
    "decisions": lambda: DECISION_KINDS,
    "thresholds_by_category": _categories,
    "thresholds_by_case_type": _case_types,
}
CHOICES: dict[str, Callable[[], tuple[str, ...]]] = {"owner": _roles, "categories": _categories}


# ---------------------------------------------------------------- what the form is made of


@dataclass
class Input:
    """One input: `name` is its dotted path in the policy."""

    name: str
    label: str
    help: str
    widget: Widget
    choices: tuple[str, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    optional: bool = False  # empty means "not set"
    default: str = ""  # what an empty input means (the schema default), shown to the reader
    value: Any = ""
    errors: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return field_id(self.name)


@dataclass
class Row:
    key: str
    name: str  # the row's own path (errors about the row as a whole land here)
    cells: list[Input]
    errors: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return field_id(self.name)


@dataclass
class Table:
    name: str
    title: str
    help: str
    row_header: str
    columns: list[tuple[str, str]]  # (label, help)
    rows: list[Row]

    @property
    def id(self) -> str:
        return field_id(self.name)


@dataclass
class Section:
    name: str
    title: str
    help: str
    items: list[Input | Table]
    errors: list[str] = field(default_factory=list)

    @property
    def id(self) -> str:
        return field_id(self.name or "general")


def field_id(name: str) -> str:
    """The HTML id of an input: dots would need escaping in CSS selectors."""
    return "f-" + name.replace(".", "--")


def _label(name: str) -> str:
    return name.replace("_", " ").capitalize()


# ---------------------------------------------------------------- the schema walker


def _unwrap(ann: Any) -> tuple[Any, bool]:
    """(annotation without None, whether None is allowed)."""
    origin = typing.get_origin(ann)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(ann) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return ann, False


def _is_model(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, BaseModel)


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    lo = hi = None
    for m in info.metadata:
        lo = getattr(m, "ge", None) if getattr(m, "ge", None) is not None else lo
        hi = getattr(m, "le", None) if getattr(m, "le", None) is not None else hi
    return lo, hi


def _leaf(name: str, key: str, info: FieldInfo) -> Input:
    """The input for a leaf field, or TypeError when the schema grew a shape the form does not know."""
    inp = _leaf_input(name, key, info)
    if info.default not in (PydanticUndefined, None, ""):
        inp.default = _show(info.default)
    return inp


def _leaf_input(name: str, key: str, info: FieldInfo) -> Input:
    ann, optional = _unwrap(info.annotation)
    help_text = info.description or ""
    lo, hi = _bounds(info)
    origin = typing.get_origin(ann)
    if origin is Literal:
        return Input(name, _label(key), help_text, Widget.SELECT, tuple(map(str, typing.get_args(ann))),
                     optional=optional)
    if ann is bool:
        return Input(name, _label(key), help_text, Widget.CHECKBOX)
    if ann in (int, float):
        return Input(name, _label(key), help_text, Widget.NUMBER, minimum=lo, maximum=hi, optional=optional)
    if ann is date:
        return Input(name, _label(key), help_text, Widget.DATE, optional=optional)
    if ann is str:
        if key in CHOICES:
            return Input(name, _label(key), help_text, Widget.SELECT, CHOICES[key](), optional=optional)
        return Input(name, _label(key), help_text, Widget.TEXT, optional=optional)
    if origin is list:
        (item,) = typing.get_args(ann)
        if typing.get_origin(item) is Literal:
            return Input(name, _label(key), help_text, Widget.CHECKS, tuple(map(str, typing.get_args(item))))
        if item is str:
            if key in CHOICES:
                return Input(name, _label(key), help_text, Widget.CHECKS, CHOICES[key]())
            return Input(name, _label(key), help_text, Widget.LIST)
    raise TypeError(f"policy form: no input for {name} ({info.annotation!r}); teach governance/policy_form.py")


def _shape(info: FieldInfo) -> tuple[str, Any]:
    ann, _ = _unwrap(info.annotation)
    origin = typing.get_origin(ann)
    if _is_model(ann):
        return "model", ann
    if origin is dict:
        _, value = typing.get_args(ann)
        return ("dict_model" if _is_model(value) else "dict_scalar"), value
    if origin is list and _is_model(typing.get_args(ann)[0]):
        return "list_model", typing.get_args(ann)[0]
    return "leaf", ann


def _keys(key: str, name: str) -> tuple[str, ...]:
    if key not in KEYS:
        raise TypeError(f"policy form: {name} is a dict with no known keys; add it to policy_form.KEYS")
    return KEYS[key]()


def _scalar_cell(info: FieldInfo, name: str, label: str) -> Input:
    """One value of a dict[str, scalar] (a threshold for one category): empty means the key is not set."""
    _, value_ann = typing.get_args(_unwrap(info.annotation)[0])
    metadata: list[Any] = []
    if typing.get_origin(value_ann) is typing.Annotated:
        value_ann, *extra = typing.get_args(value_ann)
        for m in extra:
            metadata.extend(m.metadata if isinstance(m, FieldInfo) else [m])
    cell = _leaf(name, label, FieldInfo(annotation=value_ann | None, description=info.description))
    cell.label = label  # the key as written (a category, a case type)
    for m in metadata:
        cell.minimum = getattr(m, "ge", cell.minimum)
        cell.maximum = getattr(m, "le", cell.maximum)
    return cell


def sections(values: Values | None = None, errors: Mapping[str, list[str]] | None = None) -> list[Section]:
    """The whole form for AIPolicy, with `values` (input name -> submitted value) and errors per input/row."""
    values = values or {}
    errors = errors or {}
    general = Section("", "General", "The policy's name, its review date and the kill switch.", [])
    out = [general]

    def fill(inp: Input) -> Input:
        inp.value = values.get(inp.name, [] if inp.widget == Widget.CHECKS else "")
        inp.errors = list(errors.get(inp.name, []))
        return inp

    def model_items(model: type[BaseModel], prefix: str, section: Section) -> None:
        for key, info in model.model_fields.items():
            name = f"{prefix}{key}"
            kind, inner = _shape(info)
            if kind == "leaf":
                section.items.append(fill(_leaf(name, key, info)))
            elif kind == "model":
                sub = Section(name, _label(key), info.description or inner.__doc__ or "", [], list(errors.get(name, [])))
                out.append(sub)
                model_items(inner, name + ".", sub)
            elif kind == "list_model":
                section.items.append(_rows_table(inner, name, key, info, fill, values, errors))
            elif kind == "dict_model":
                sub = Section(name, _label(key), info.description or "", [], list(errors.get(name, [])))
                out.append(sub)
                _matrix(inner, name, key, info, sub, fill, errors)
            else:
                raise TypeError(f"policy form: {name} is a dict of values outside a matrix; teach policy_form.py")

    model_items(AIPolicy, "", general)
    return out


def _rows_table(model: type[BaseModel], name: str, key: str, info: FieldInfo, fill: Callable[[Input], Input],
                values: Values, errors: Mapping[str, list[str]]) -> Table:
    used = [i for i in range(MAX_ROWS) if any(k.startswith(f"{name}.{i}.") and v for k, v in values.items())]
    count = min(MAX_ROWS, (max(used) + 1 if used else 0) + BLANK_ROWS)
    columns = [(_label(k), fi.description or "") for k, fi in model.model_fields.items()]
    rows = []
    for i in range(count):
        cells = []
        for k, fi in model.model_fields.items():
            if _shape(fi)[0] != "leaf":
                raise TypeError(f"policy form: {name}.{k} is nested inside a list; teach policy_form.py")
            inp = _leaf(f"{name}.{i}.{k}", k, fi)
            inp.optional = True  # a blank row is no row
            cells.append(fill(inp))
        rows.append(Row(str(i + 1), f"{name}.{i}", cells, list(errors.get(f"{name}.{i}", []))))
    return Table(name, _label(key), info.description or model.__doc__ or "", "#", columns, rows)


def _matrix(model: type[BaseModel], name: str, key: str, info: FieldInfo, section: Section,
            fill: Callable[[Input], Input], errors: Mapping[str, list[str]]) -> None:
    """dict[str, Model]: one row per vocabulary key; leaf fields are columns; dict fields get their own table."""
    row_keys = _keys(key, name)
    leaves = [(k, fi) for k, fi in model.model_fields.items() if _shape(fi)[0] == "leaf"]
    tables = [(k, fi) for k, fi in model.model_fields.items() if _shape(fi)[0] != "leaf"]
    rows = []
    for rk in row_keys:
        cells = []
        for k, fi in leaves:
            inp = fill(_leaf(f"{name}.{rk}.{k}", k, fi))
            if k == "mode":
                inp.optional = True  # empty mode: this kind is not in the policy (required kinds are refused)
            cells.append(inp)
        rows.append(Row(rk, f"{name}.{rk}", cells, list(errors.get(f"{name}.{rk}", []))))
    section.items.append(Table(name, f"{_label(key)}: " + " × ".join(_label(k).lower() for k, _ in leaves),
                               info.description or "", "Decision kind",
                               [(_label(k), fi.description or "") for k, fi in leaves], rows))
    for k, fi in tables:
        if _shape(fi)[0] != "dict_scalar":
            raise TypeError(f"policy form: {name}.*.{k} has a shape the matrix does not know; teach policy_form.py")
        col_keys = _keys(k, f"{name}.*.{k}")
        sub_rows = [Row(rk, f"{name}.{rk}.{k}", [fill(_scalar_cell(fi, f"{name}.{rk}.{k}.{ck}", ck)) for ck in col_keys],
                        list(errors.get(f"{name}.{rk}.{k}", []))) for rk in row_keys]
        section.items.append(Table(f"{name}.{k}", _label(k), fi.description or "", "Decision kind",
                                   [(ck, "") for ck in col_keys], sub_rows))


def input_names(form: list[Section]) -> list[str]:
    out = []
    for sec in form:
        for item in sec.items:
            if isinstance(item, Input):
                out.append(item.name)
            else:
                out.extend(c.name for r in item.rows for c in r.cells)
    return out


def anchors(form: list[Section]) -> set[str]:
    """Every name an error can be shown at: inputs, table rows and sections."""
    names = set(input_names(form))
    for sec in form:
        names.add(sec.name)
        for item in sec.items:
            if isinstance(item, Table):
                names.add(item.name)
                names.update(r.name for r in item.rows)
    return names


# ---------------------------------------------------------------- policy data <-> form values


def _show(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else ""
    if isinstance(v, date):
        return v.isoformat()
    return str(v)


def values_from_data(data: Mapping[str, Any]) -> dict[str, Any]:
    """Policy data (as YAML loads it) -> input values, the same shape a browser submits."""
    out: dict[str, Any] = {}

    def walk(model: type[BaseModel], d: Any, prefix: str) -> None:
        if not isinstance(d, Mapping):
            return
        for key, info in model.model_fields.items():
            name, v = f"{prefix}{key}", d.get(key)
            kind, inner = _shape(info)
            if v is None and kind != "leaf":
                continue
            if kind == "model":
                walk(inner, v, name + ".")
            elif kind == "dict_model" and isinstance(v, Mapping):
                for rk, rv in v.items():
                    walk(inner, rv, f"{name}.{rk}.")
            elif kind == "dict_scalar" and isinstance(v, Mapping):
                for ck, cv in v.items():
                    out[f"{name}.{ck}"] = _show(cv)
            elif kind == "list_model" and isinstance(v, list):
                for i, item in enumerate(v):
                    walk(inner, item, f"{name}.{i}.")
            elif kind == "leaf":
                widget = _leaf(name, key, info).widget
                if widget == Widget.CHECKS:
                    out[name] = [str(x) for x in v or []]
                elif widget == Widget.LIST:
                    out[name] = ", ".join(str(x) for x in v or [])
                elif v is not None:
                    out[name] = _show(v)
    walk(AIPolicy, data, "")
    return out


def _one(values: Values, name: str) -> str:
    v = values.get(name, "")
    if isinstance(v, list):
        v = v[0] if v else ""
    return str(v).strip()


def _parse(inp: Input, values: Values) -> Any:
    """A submitted value as policy data; what cannot be parsed stays a string so the schema names the problem."""
    if inp.widget == Widget.CHECKS:
        v = values.get(inp.name, [])
        return [str(x) for x in (v if isinstance(v, list) else [v]) if str(x)]
    raw = _one(values, inp.name)
    if inp.widget == Widget.CHECKBOX:
        return raw.lower() in ("true", "on", "1", "yes")
    if inp.widget == Widget.LIST:
        return [p.strip() for p in re.split(r"[,\n]", raw) if p.strip()]
    if raw == "":
        return None
    if inp.widget == Widget.NUMBER:
        if re.fullmatch(r"-?\d+", raw):
            return int(raw)
        try:
            return float(raw)
        except ValueError:
            return raw
    if inp.widget == Widget.DATE:
        try:
            return date.fromisoformat(raw)
        except ValueError:
            return raw
    return raw


def _default(info: FieldInfo) -> Any:
    if info.default_factory is not None:
        return info.default_factory()  # type: ignore[call-arg]
    return None if info.default is PydanticUndefined else info.default


def _keep(key: str, info: FieldInfo, value: Any, base: Mapping[str, Any]) -> bool:
    """Write a key when it is required, was in the text already (unless emptied), or differs from the schema
    default; an empty input removes it. So an untouched form reproduces the text exactly."""
    if value is None:
        return False
    if info.is_required() or key in base and (base[key] == value or value not in ({}, [])):
        return True
    return bool(value != _default(info))


def data_from_values(values: Values, base: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Submitted input values -> policy data (to be validated by the schema like any YAML)."""
    base = base or {}

    def walk(model: type[BaseModel], prefix: str, b: Mapping[str, Any]) -> dict[str, Any]:
        b = b if isinstance(b, Mapping) else {}
        d: dict[str, Any] = {}
        for key, info in model.model_fields.items():
            name = f"{prefix}{key}"
            kind, inner = _shape(info)
            if kind == "leaf":
                value = _parse(_leaf(name, key, info), values)
                was = b.get(key)
                if isinstance(value, list) and isinstance(was, list):  # checkboxes come in choice order: keep the text's
                    value.sort(key=lambda x: was.index(x) if x in was else len(was))
            elif kind == "model":
                value = walk(inner, name + ".", b.get(key) or {})
            elif kind == "dict_model":
                value = {}
                old: Mapping[str, Any] = b[key] if isinstance(b.get(key), Mapping) else {}
                for rk in _keys(key, name):
                    if _one(values, f"{name}.{rk}.mode"):  # no mode: the kind is not in the policy
                        value[rk] = walk(inner, f"{name}.{rk}.", old.get(rk) or {})
            elif kind == "dict_scalar":
                value = {}
                for ck in _keys(key, name):
                    v = _parse(_scalar_cell(info, f"{name}.{ck}", ck), values)
                    if v is not None:
                        value[ck] = v
            else:  # list_model
                value = []
                old_rows: list[Any] = b[key] if isinstance(b.get(key), list) else []
                for i in range(MAX_ROWS):
                    if any(_one(values, n) for n in values if n.startswith(f"{name}.{i}.")):
                        ob = old_rows[i] if i < len(old_rows) and isinstance(old_rows[i], Mapping) else {}
                        value.append(walk(inner, f"{name}.{i}.", ob))
            if _keep(key, info, value, b):
                d[key] = value
        return d

    return walk(AIPolicy, "", base)


# ---------------------------------------------------------------- into the YAML text, keeping its comments


def _yaml() -> Any:
    from ruamel.yaml import YAML

    y = YAML()  # round trip: comments, key order and flow style survive
    y.width = 4096  # never re-wrap a line the author wrote
    y.preserve_quotes = True
    y.indent(mapping=2, sequence=4, offset=2)
    return y


def _sync_list(cur: Any, new: list[Any]) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    if all(isinstance(x, Mapping) for x in new) and isinstance(cur, CommentedSeq):
        for i, item in enumerate(new):
            if i < len(cur) and isinstance(cur[i], CommentedMap):
                _sync(cur[i], item)
            elif i < len(cur):
                cur[i] = item
            else:
                cur.append(item)
        del cur[len(new):]
        return cur
    if isinstance(cur, list) and list(cur) == new:
        return cur
    seq = CommentedSeq(new)
    if isinstance(cur, CommentedSeq) and cur.fa.flow_style():
        seq.fa.set_flow_style()
    elif not isinstance(cur, CommentedSeq) and all(not isinstance(x, Mapping | list) for x in new):
        seq.fa.set_flow_style()  # a new list of words reads best on one line
    return seq


def _sync(target: Any, new: Mapping[str, Any]) -> None:
    from ruamel.yaml.comments import CommentedMap

    for k in [k for k in target if k not in new]:
        del target[k]
    for k, v in new.items():
        cur = target.get(k)
        if isinstance(v, Mapping) and isinstance(cur, CommentedMap):
            _sync(cur, v)
        elif isinstance(v, list):
            target[k] = _sync_list(cur, v)
        elif k not in target or type(cur) is bool and type(v) is not bool or cur != v:
            target[k] = v


def _dump(y: Any, doc: Any) -> str:
    buf = io.StringIO()
    y.dump(doc, buf)
    return buf.getvalue()


def _keep_layout(original: str, norm: str, out: str) -> str:
    """Carry the author's own layout over into `out`. `norm` is the original re-emitted unchanged by ruamel; where
    ruamel re-formatted a region (a wrapped flow list, spacing) that the edit did not touch, the original lines
    come back, so the text diff shows only the edit (a three-way merge with `norm` as the common base)."""
    from difflib import SequenceMatcher

    a, b, c = norm.splitlines(keepends=True), original.splitlines(keepends=True), out.splitlines(keepends=True)
    to_out: dict[int, int] = {}
    for block in SequenceMatcher(None, a, c, autojunk=False).get_matching_blocks():
        for k in range(block.size):
            to_out[block.a + k] = block.b + k
    patches: list[tuple[int, int, list[str]]] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, a, b, autojunk=False).get_opcodes():
        if tag == "equal":
            continue
        if i1 == i2:  # lines only the original has: insert them where their neighbour went
            at = len(c) if i1 == len(a) else to_out.get(i1)
            if at is not None:
                patches.append((at, at, b[j1:j2]))
            continue
        if all(i in to_out for i in range(i1, i2)):
            spots = [to_out[i] for i in range(i1, i2)]
            if spots == list(range(spots[0], spots[0] + len(spots))):  # the region came through in one piece
                patches.append((spots[0], spots[-1] + 1, b[j1:j2]))
    for start, end, lines in sorted(patches, key=lambda p: (p[0], p[1]), reverse=True):
        c[start:end] = lines
    return "".join(c)


def to_text(data: Mapping[str, Any], base_text: str) -> str:
    """The policy data written into the base text: unchanged keys keep their lines, comments and layout."""
    if data == base_data(base_text):
        return base_text
    y = _yaml()
    try:
        doc = y.load(base_text)
    except Exception:  # noqa: BLE001 - a base that ruamel cannot read: write the data plainly
        doc = None
    if not isinstance(doc, Mapping):
        import yaml

        return yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True)
    norm = _dump(y, doc)
    _sync(doc, data)
    return _keep_layout(base_text, norm, _dump(y, doc))


def base_data(text: str) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


# ---------------------------------------------------------------- problems back onto inputs


def _field_names(model: type[BaseModel]) -> set[str]:
    out = set(model.model_fields)
    for info in model.model_fields.values():
        kind, inner = _shape(info)
        if kind in ("model", "dict_model", "list_model"):
            out |= _field_names(inner)
    return out


FIELD_NAMES = _field_names(AIPolicy)  # schema words a problem's path is spelled with (vs. kinds, categories)


def _key_at_line(text: str) -> dict[int, tuple[Any, ...]]:
    from casemgr.governance.policy import _key_lines

    by_line: dict[int, tuple[Any, ...]] = {}
    for path, line in _key_lines(text).items():
        if len(path) > len(by_line.get(line, ())):
            by_line[line] = path
    return by_line


def field_problems(problems: list[Problem], text: str, form_anchors: set[str]) -> tuple[dict[str, list[str]],
                                                                                         list[dict[str, Any]]]:
    """(errors per input/row/section name, every problem with the anchor it points at or None)."""
    at_line = _key_at_line(text)
    errors: dict[str, list[str]] = {}
    listed: list[dict[str, Any]] = []
    for p in problems:
        where, sep, message = p.message.partition(": ")
        if sep and re.fullmatch(r"[\w.]+", where):
            parts = where.split(".")
        else:
            parts, message = [str(x) for x in at_line.get(p.line, ())], p.message
        anchor = None
        for n in range(len(parts), 0, -1):
            cand = ".".join(parts[:n])
            if cand in form_anchors:
                anchor = cand
                break
        errors.setdefault(anchor if anchor is not None else "", []).append(message)
        where_words = " › ".join(_label(x) if x in FIELD_NAMES else x for x in parts) or "Policy"
        listed.append({"anchor": anchor, "id": field_id(anchor or "general"), "message": p.message, "line": p.line,
                       "text": f"{where_words}: {message}"})
    return errors, listed
