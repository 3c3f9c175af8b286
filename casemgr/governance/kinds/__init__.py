"""The decision kinds AI output can take, one class per file in this package.

Adding a kind is one file: a DecisionKind subclass decorated with @register (see base.py for what it says:
value schema, checks against the case, current value, apply, whether routing runs again). The AI policy's
known kinds, decide()'s checks and governance.service's apply/revert all read this registry.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import TypeVar

from casemgr.governance.kinds.base import DecisionKind, StageMove

K = TypeVar("K", bound=type[DecisionKind])
_KINDS: dict[str, DecisionKind] = {}


def register(cls: K) -> K:
    if cls.name in _KINDS:
        raise RuntimeError(f"decision kind {cls.name!r} registered twice")
    _KINDS[cls.name] = cls()
    return cls


def _load() -> None:
    # Every module of the package is a kind; an import error fails loudly here, never skips a kind.
    for info in pkgutil.iter_modules(__path__):
        if info.name != "base":
            importlib.import_module(f"{__name__}.{info.name}")


def get(name: str) -> DecisionKind | None:
    return _KINDS.get(name)


def all_kinds() -> list[DecisionKind]:
    """Every kind, required ones first, each group in rank order."""
    return sorted(_KINDS.values(), key=lambda k: (not k.required, k.rank, k.name))


def names(*, required: bool | None = None) -> tuple[str, ...]:
    return tuple(k.name for k in all_kinds() if required is None or k.required == required)


def stage_moves() -> list[StageMove]:
    """The stage-moving kinds, the most specific first (the first that `proposes` a move names it)."""
    return sorted((k for k in all_kinds() if isinstance(k, StageMove)), key=lambda k: (k.proposal_order, k.rank))


_load()
