"""The gate every rule regex (`matches` / `imatches`) passes before anything compiles or runs it (issue 18).

A pattern with nested quantifiers such as `((a*)*)*` makes durable-rules' C core build its automaton for ever,
holding the GIL (the whole process freezes, SIGTERM included), and makes backtracking engines exponential.
Two checks, both linear in the pattern's length:

- google-re2 must compile it: re2 guarantees linear-time matching and refuses what only a backtracking engine
  can do (back-references, look-around), and caps repetition counts and program size;
- no quantifier may apply to something that itself contains a quantifier (star height 1). That is the shape
  behind catastrophic backtracking and the shape that hangs durable-rules' compiler.

`scan_files` finds every pattern in raw rules YAML with its line, from the parser's event stream: no alias is
expanded and no rule is parsed, so a hostile upload is refused before any expensive work starts.
"""

from __future__ import annotations

import re
import re._constants as sre_c  # type: ignore[import-not-found]  # CPython's own regex parser (3.11+)
import re._parser as sre_parse  # type: ignore[import-not-found]
from typing import Any

import re2
import yaml

from casemgr.policyfile import Problem

REGEX_OPS = frozenset({"matches", "imatches"})
MAX_PATTERN_CHARS = 1000
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when present: events only, fast
_REPEATS = (sre_c.MAX_REPEAT, sre_c.MIN_REPEAT, getattr(sre_c, "POSSESSIVE_REPEAT", sre_c.MAX_REPEAT))


def _re2_options() -> Any:
    options = re2.Options()
    options.log_errors = False  # the problem goes to the caller, not to stderr
    options.max_mem = 1 << 20  # a pattern needing more than 1 MiB of automaton is not a routing rule
    return options


def _is_repeat(op: Any, av: Any) -> bool:
    return op in _REPEATS and av[1] > 1  # `x?` repeats at most once: it cannot nest exponentially


def _children(op: Any, av: Any) -> list[Any]:
    """Sub-patterns of one parsed item (groups, alternatives, repeats, conditionals)."""
    if op in _REPEATS:
        return [av[2]]
    if op == sre_c.SUBPATTERN:
        return [av[3]]
    if op == sre_c.BRANCH:
        return list(av[1])
    if op in (sre_c.ASSERT, sre_c.ASSERT_NOT):
        return [av[1]]
    if op == sre_c.GROUPREF_EXISTS:
        return [p for p in av[1:] if p is not None]
    if op == getattr(sre_c, "ATOMIC_GROUP", None):
        return [av]
    return []


def _has_repeat(sub: Any) -> bool:
    return any(_is_repeat(op, av) or any(_has_repeat(c) for c in _children(op, av)) for op, av in sub)


def _nested_repeat(sub: Any) -> bool:
    for op, av in sub:
        if _is_repeat(op, av) and _has_repeat(av[2]):
            return True
        if any(_nested_repeat(c) for c in _children(op, av)):
            return True
    return False


def problem(pattern: str) -> str | None:
    """Why `pattern` is refused, or None when it is safe to compile and evaluate."""
    if len(pattern) > MAX_PATTERN_CHARS:
        return f"longer than {MAX_PATTERN_CHARS} characters"
    try:
        re2.compile(pattern, options=_re2_options())
    except re2.error as exc:
        detail = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        return f"not accepted by the linear-time engine (re2): {detail}"
    try:
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        return f"cannot be parsed: {exc}"
    if _nested_repeat(parsed):
        return ("nested quantifiers (a repeated group that itself repeats, such as (a+)+ or ((a*)*)*) can take "
                "exponential time; repeat a single item instead")
    return None


def scan_text(text: str, file: str) -> list[Problem]:
    """Every refused `matches`/`imatches` pattern in one rules YAML text, with its line."""
    problems: list[Problem] = []
    # One frame per open collection: [is_mapping, expecting_key, current_key].
    stack: list[list[Any]] = []
    node_events = (yaml.ScalarEvent, yaml.AliasEvent, yaml.MappingStartEvent, yaml.SequenceStartEvent)
    try:
        for ev in yaml.parse(text, Loader=_LOADER):
            if isinstance(ev, node_events):
                top = stack[-1] if stack else None
                if top is not None and top[0]:
                    if top[1]:
                        top[2] = ev.value if isinstance(ev, yaml.ScalarEvent) else None
                        top[1] = False
                    else:
                        if top[2] in REGEX_OPS and isinstance(ev, yaml.ScalarEvent):
                            why = problem(ev.value)
                            if why:
                                problems.append(Problem(file, ev.start_mark.line + 1,
                                                        f"unsafe regex {ev.value[:80]!r}: {why}"))
                        top[1] = True
                if isinstance(ev, yaml.MappingStartEvent):
                    stack.append([True, True, None])
                elif isinstance(ev, yaml.SequenceStartEvent):
                    stack.append([False, False, None])
            elif isinstance(ev, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                stack.pop()
    except yaml.YAMLError:
        pass  # not YAML: the validator reports it with its line
    return problems


def scan_files(files: dict[str, str]) -> list[Problem]:
    return [p for name, text in files.items() for p in scan_text(text, name)]
