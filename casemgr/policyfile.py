"""Load policy YAML with line numbers, so every validation error can say `file:line: reason`.

Shared by case types, rules and the AI policy: all policy is validated data, and an invalid file is refused
as a whole (the caller keeps its previous version active).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import PydanticCustomError

Loc = tuple[Any, ...]
M = TypeVar("M", bound=BaseModel)


@dataclass
class Problem:
    file: str
    line: int
    message: str
    rule: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        return f"{where}: [{self.rule}] {self.message}" if self.rule else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "message": self.message, "rule": self.rule}


class PolicyFileError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


@dataclass
class LoadedYaml:
    file: str
    data: Any
    lines: dict[Loc, int] = field(default_factory=dict)

    def line_of(self, loc: Loc) -> int:
        """Line of the deepest node on the path that exists (errors about missing keys point at the parent)."""
        loc = tuple(loc)
        while loc:
            if loc in self.lines:
                return self.lines[loc]
            loc = loc[:-1]
        return self.lines.get((), 1)


class _StrictLoader(yaml.SafeLoader):
    pass


# Composing (the node tree with line marks) in libyaml's C parser when PyYAML has it: the pure-Python composer
# was most of a cold start's cost of loading the rules (issue 23: `casemgr intake pipe` starts once per message).
# The nodes, marks and resolved tags are the same; scalars are still constructed by _StrictLoader.
_Composer: Any = getattr(yaml, "CSafeLoader", _StrictLoader)


def _construct(node: yaml.Node, path: Loc, lines: dict[Loc, int], file: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = key_node.value
            if not isinstance(key_node, yaml.ScalarNode):
                raise PolicyFileError([Problem(file, key_node.start_mark.line + 1, "mapping keys must be scalars")])
            if key in out:
                raise PolicyFileError(
                    [Problem(file, key_node.start_mark.line + 1, f"duplicate key {key!r}")]
                )
            out[key] = _construct(value_node, path + (key,), lines, file)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, path + (i,), lines, file) for i, item in enumerate(node.value)]
    loader = _StrictLoader("")
    return loader.construct_object(node, deep=True)


def load_yaml_text(text: str, file: str) -> LoadedYaml:
    try:
        node = yaml.compose(text, Loader=_Composer)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 1
        raise PolicyFileError([Problem(file, line, f"YAML syntax error: {exc.problem or exc}")]) from None
    except yaml.YAMLError as exc:
        raise PolicyFileError([Problem(file, 1, f"YAML error: {exc}")]) from None
    lines: dict[Loc, int] = {}
    if node is None:
        raise PolicyFileError([Problem(file, 1, "file is empty")])
    data = _construct(node, (), lines, file)
    return LoadedYaml(file=file, data=data, lines=lines)


def load_yaml_file(path: str | Path) -> LoadedYaml:
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyFileError([Problem(str(p), 0, "file not found")]) from None
    except UnicodeDecodeError as exc:
        raise PolicyFileError([Problem(str(p), 1, f"not valid UTF-8: {exc}")]) from None
    return load_yaml_text(text, str(p))


# A validator raises `problem("...")` for a message written for people: it is shown as is, with file:line but
# without the pydantic location prefix that generic errors get.
PROBLEM_TYPE = "policy_file"


def problem(message: str) -> PydanticCustomError:
    return PydanticCustomError(PROBLEM_TYPE, "{message}", {"message": message})


def problems_from_validation(loaded: LoadedYaml, exc: ValidationError,
                             rule_of: Callable[[Loc], str | None] | None = None) -> list[Problem]:
    """One Problem per pydantic error, at the line of its location; `rule_of(loc)` names the rule it is in."""
    problems = []
    for err in exc.errors():
        loc = tuple(err.get("loc", ()))
        where = ".".join(str(x) for x in loc) or "(top level)"
        msg = str(err.get("msg")) if err.get("type") == PROBLEM_TYPE else f"{where}: {err.get('msg')}"
        problems.append(Problem(loaded.file, loaded.line_of(loc), msg, rule_of(loc) if rule_of else None))
    return problems


def validate(loaded: LoadedYaml, model: type[M], *, context: dict[str, Any] | None = None,
             rule_of: Callable[[Loc], str | None] | None = None) -> M:
    """Validate loaded YAML against a pydantic model (`context` reaches the validators); every error becomes a
    Problem with file:line."""
    try:
        return model.model_validate(loaded.data, context=context)
    except ValidationError as exc:
        raise PolicyFileError(problems_from_validation(loaded, exc, rule_of)) from None
