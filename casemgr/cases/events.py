"""Case events other rooms react to, without cases importing them.

A listener is a plain function `(event: CaseEvent) -> None` called inside the change's transaction, before the
change's audit event is written, so whatever it changes on the case is part of that event's diff. Listeners
register through `connect`; the rooms that listen are wired in one list, `casemgr.listeners`, loaded on the
first publish so a change never runs without its listeners whatever happened to be imported before.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import Session


class CaseEventName(StrEnum):
    STAGE_CHANGED = "stage_changed"  # the case entered another stage
    WAIT_CHANGED = "wait_changed"  # waiting_on_customer flipped


@dataclass(frozen=True)
class CaseEvent:
    session: Session
    case: Any  # casemgr.cases.models.Case, already claimed (version bumped)
    before: dict[str, Any]  # snapshot taken right after the claim, before the change
    at: datetime
    actor: str


Listener = Callable[[CaseEvent], None]
_listeners: dict[CaseEventName, list[Listener]] = {name: [] for name in CaseEventName}
_loaded = False
_lock = threading.Lock()  # the first publishes may come from several request threads at once


def connect(name: CaseEventName, listener: Listener) -> None:
    """Register `listener` for `name` (idempotent: the same function is registered once)."""
    with _lock:
        if listener not in _listeners[name]:
            _listeners[name].append(listener)


def ensure_wired() -> None:
    """Load the one wiring list (casemgr.listeners) once: listeners and the AI-fact gate."""
    global _loaded
    if not _loaded:
        from casemgr import listeners as wiring

        wiring.register()
        _loaded = True


def listeners(name: CaseEventName) -> list[Listener]:
    ensure_wired()
    return list(_listeners[name])


def publish(name: CaseEventName, event: CaseEvent) -> None:
    for listener in listeners(name):
        listener(event)
