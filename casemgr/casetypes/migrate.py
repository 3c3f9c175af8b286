"""`casemgr casetypes migrate --from V --to W [--dry-run]`: move running cases to another case-types version.

A running (open) case pinned to V moves to W when W still has its type and its current stage, and that stage is
not final in W (an open case cannot sit in a closing stage). The others stay on V and are listed with why. Each
move is one `cases.change` unit of work (version claim, one audit event `case.type_version_migrated` with from/to)
in its own savepoint, so one case that fails does not undo the others. The current stage keeps its due time;
the stages the case enters next follow W.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from casemgr.cases.enums import CaseStatus
from casemgr.cases.models import Case
from casemgr.casetypes.registry import Registry
from casemgr.casetypes.versions import registry_for, resolve
from casemgr.errors import DomainError, ValidationFailed

ACTION = "case.type_version_migrated"
BATCH = 500


@dataclass
class MigrationReport:
    from_version: str
    to_version: str
    dry_run: bool
    moved: list[dict[str, Any]] = field(default_factory=list)
    blocked: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"from": self.from_version, "to": self.to_version, "dry_run": self.dry_run,
                "moved": len(self.moved), "blocked": len(self.blocked),
                "cases": self.moved, "cannot_move": self.blocked}


def why_not(case: Case, target: Registry) -> str | None:
    """Why `case` cannot run on `target` (None: it can)."""
    ct = target.case_types.get(case.case_type)
    if ct is None:
        return f"case type {case.case_type!r} does not exist in {target.version}"
    sd = ct.stage(case.stage)
    if sd is None:
        return f"stage {case.stage!r} does not exist in {target.version} (stages: {', '.join(ct.stage_names)})"
    if sd.final:
        return f"stage {case.stage!r} is final in {target.version} and the case is open"
    return None


def _pinned(session: Session, version: str, case_type: str | None, after_id: int) -> list[Case]:
    q = (select(Case).where(col(Case.case_type_version) == version, col(Case.status) != CaseStatus.CLOSED,
                            col(Case.id) > after_id).order_by(col(Case.id)).limit(BATCH))
    if case_type:
        q = q.where(col(Case.case_type) == case_type)
    return list(session.execute(q).scalars())


def migrate(session: Session, from_ref: str, to_ref: str, *, actor: str, dry_run: bool = False,
            case_type: str | None = None) -> MigrationReport:
    from_v = resolve(session, from_ref, field="from")
    to_v = resolve(session, to_ref, field="to")
    if from_v == to_v:
        raise ValidationFailed(f"--from and --to name the same version ({from_v})", field="to")
    target = registry_for(to_v, session)
    if target.version != to_v:
        raise ValidationFailed(f"case-types version {to_v} is not stored", field="to")
    report = MigrationReport(from_v, to_v, dry_run)
    after = 0
    while batch := _pinned(session, from_v, case_type, after):
        after = int(batch[-1].id or 0)
        for case in batch:
            item = {"id": case.id, "reference": case.reference, "case_type": case.case_type, "stage": case.stage}
            why = why_not(case, target)
            if why:
                report.blocked.append({**item, "reason": why})
                continue
            if not dry_run:
                try:
                    _move(session, int(case.id or 0), from_v, to_v, actor)
                except DomainError as exc:  # e.g. changed meanwhile: reported, the others go on
                    report.blocked.append({**item, "reason": exc.message})
                    continue
            report.moved.append(item)
    return report


def _move(session: Session, case_id: int, from_v: str, to_v: str, actor: str) -> None:
    from casemgr.cases.change import change

    with session.begin_nested():
        with change(session, case_id, None, actor, ACTION, entity="case_type_version") as ch:
            if ch.case.case_type_version != from_v:  # moved by someone else since it was read
                raise ValidationFailed(f"case {case_id} is no longer on {from_v}")
            ch.case.case_type_version = to_v
            ch.audit(before={"case_type_version": from_v}, after={"case_type_version": to_v,
                                                                  "stage": ch.case.stage})
