"""The case unit of work used by the workspace: casemgr.cases.change once it lands, else a minimal stand-in
with the same shape (claim the version -> 409, body changes ch.case, one audit event on clean exit)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

try:  # pragma: no cover - depends on which build this runs in
    from casemgr.cases.change import change  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover
    from casemgr.audit import service as audit
    from casemgr.cases.models import Case
    from casemgr.cases.service import _claim_version, diff, snapshot

    @dataclass
    class _Change:
        session: Session
        case: Case
        actor: str
        action: str
        before: dict[str, Any]
        entity: str = "case"
        _after: dict[str, Any] | None = None
        _before: dict[str, Any] | None = None
        _custom: bool = False

        def audit(self, *, after: dict[str, Any] | None = None, before: dict[str, Any] | None = None,
                  action: str | None = None, entity: str | None = None) -> None:
            self._custom, self._after, self._before = True, after, before
            self.action = action or self.action
            self.entity = entity or self.entity

    @contextmanager  # type: ignore[no-redef]
    def change(session: Session, case_id: int, version: int | None, actor: str, action: str, *,
               entity: str = "case") -> Iterator[_Change]:
        case = _claim_version(session, case_id, version)
        ch = _Change(session=session, case=case, actor=actor, action=action, before=snapshot(case), entity=entity)
        yield ch
        session.add(ch.case)
        session.flush()
        b, a = diff(ch.before, snapshot(ch.case))
        if ch._custom:
            b, a = ch._before or {}, ch._after or {}
        audit.record(session, actor=ch.actor, action=ch.action, case_id=case_id, entity=ch.entity, before=b, after=a)

__all__ = ["change"]
