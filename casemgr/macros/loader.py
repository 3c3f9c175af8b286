"""Load and validate policies/macros/*.yaml (file:line problems), cached until the files change."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from casemgr.config import get_settings
from casemgr.macros import render
from casemgr.macros.schema import Macro
from casemgr.policyfile import LoadedYaml, PolicyFileError, Problem, load_yaml_file, validate

_lock = threading.Lock()
_cache: dict[str, object] = {}


def macros_dir() -> Path:
    return Path(get_settings().policies_dir) / "macros"


def load_file(path: Path) -> Macro:
    loaded: LoadedYaml = load_yaml_file(path)
    if isinstance(loaded.data, dict):
        loaded.data.setdefault("name", path.stem)
    macro = validate(loaded, Macro)
    problems = []
    if macro.name != path.stem:
        problems.append(Problem(loaded.file, loaded.line_of(("name",)), f"name {macro.name!r} must match the file "
                                                                         f"name {path.stem!r}"))
    found = render.check(macro.reply)
    if found:
        # The reply is a block scalar: its first text line is the line after `reply:`.
        problems.append(Problem(loaded.file, loaded.line_of(("reply",)) + found[0], found[1]))
    problems += _check_against_case_types(loaded, macro)
    if problems:
        raise PolicyFileError(problems)
    return macro


def _resolution_problems(loaded: LoadedYaml, macro: Macro, ct: Any) -> list[Problem]:
    """A macro that closes a type with resolution codes must name one of them; other macros name none."""
    target = ct.stage(macro.transition) if macro.transition else None
    closes = target is not None and target.final and bool(ct.resolution_codes)
    codes = [c.name for c in ct.resolution_codes]
    if closes and not macro.resolution_code:
        return [Problem(loaded.file, loaded.line_of(("transition",)), f"closing a {ct.name} needs a resolution code: "
                        f"add resolution_code, one of {', '.join(codes)}")]
    if macro.resolution_code and not closes:
        return [Problem(loaded.file, loaded.line_of(("resolution_code",)),
                        f"resolution_code is only for a macro that closes a {ct.name} with resolution codes")]
    if macro.resolution_code and macro.resolution_code not in codes:
        return [Problem(loaded.file, loaded.line_of(("resolution_code",)),
                        f"unknown resolution code {macro.resolution_code!r} for {ct.name}; choices: {', '.join(codes)}")]
    return []


def _check_against_case_types(loaded: LoadedYaml, macro: Macro) -> list[Problem]:
    from casemgr.casetypes.registry import get_registry

    reg = get_registry()
    out = []
    for t in macro.case_types:
        ct = reg.get(t)
        names = set(ct.stage_names)
        for s in [*macro.stages, *([macro.transition] if macro.transition else [])]:
            if s not in names:
                key = ("transition",) if s == macro.transition else ("stages",)
                out.append(Problem(loaded.file, loaded.line_of(key), f"{t} has no stage {s!r}"))
        out.extend(_resolution_problems(loaded, macro, ct))
        declared = {f.name for f in ct.fields}
        for f in macro.set.fields:
            if f not in declared:
                out.append(Problem(loaded.file, loaded.line_of(("set", "fields", f)), f"{t} has no field {f!r}"))
    if macro.set.queue and macro.transition:
        out.append(Problem(loaded.file, loaded.line_of(("set", "queue")), "a macro that moves the stage cannot also "
                                                                          "set the queue: routing picks the new stage's queue"))
    if macro.set.queue and macro.set.queue not in reg.org.queue_names:
        out.append(Problem(loaded.file, loaded.line_of(("set", "queue")), f"unknown queue {macro.set.queue!r}"))
    for i, task in enumerate(macro.tasks):
        if task.role and task.role not in reg.org.role_names:
            out.append(Problem(loaded.file, loaded.line_of(("tasks", i, "role")), f"unknown role {task.role!r}"))
    return out


def load_all(directory: Path | None = None) -> dict[str, Macro]:
    """Every macro by name; raises PolicyFileError listing the problems of every bad file."""
    d = directory or macros_dir()
    if not d.is_dir():
        return {}
    out: dict[str, Macro] = {}
    problems: list[Problem] = []
    for path in sorted(d.glob("*.yaml")):
        try:
            m = load_file(path)
        except PolicyFileError as exc:
            problems.extend(exc.problems)
            continue
        out[m.name] = m
    if problems:
        raise PolicyFileError(problems)
    return out


def get_macros() -> dict[str, Macro]:
    """The macros, re-read when a file in the directory changes (mtime/size signature)."""
    d = macros_dir()
    files = sorted(d.glob("*.yaml")) if d.is_dir() else []
    sig = tuple((p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in files)
    with _lock:
        if _cache.get("sig") == (str(d), sig):
            return _cache["macros"]  # type: ignore[return-value]
        macros = load_all(d)
        _cache.update({"sig": (str(d), sig), "macros": macros})
        return macros
