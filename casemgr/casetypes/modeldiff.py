"""What changed in one case type between two versions: stages, transitions, SLA, owner role and tasks.

The model view (casemgr.casetypes.model_svg) draws the union of both versions and marks each part with its
DiffStatus, so a process owner sees a publish's effect on the process, not only on the YAML text.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from casemgr.casetypes.enums import DiffStatus
from casemgr.casetypes.schema import CaseTypeDef, StageDef


def sla_text(sd: StageDef | None) -> str:
    if sd is None or sd.sla is None:
        return "no SLA" if sd is None or not sd.waits_on_customer else "SLA paused (waits on customer)"
    hours = f"{sd.sla.hours:g} h"
    return f"SLA {hours}" + ("" if sd.sla.business_hours else " (calendar)")


@dataclass
class StageDiff:
    name: str
    status: DiffStatus
    stage: StageDef  # the new one; for a removed stage, the old one
    old: StageDef | None = None
    changed: dict[str, tuple[str, str]] = field(default_factory=dict)  # attribute -> (old text, new text)
    tasks: dict[str, DiffStatus] = field(default_factory=dict)  # task name -> status

    def attr(self, name: str) -> DiffStatus:
        return DiffStatus.CHANGED if name in self.changed else DiffStatus.SAME


@dataclass
class ModelDiff:
    stages: list[StageDiff]  # drawing order: the new order, removed stages after their old predecessor
    transitions: dict[tuple[str, str], DiffStatus]
    compared: bool  # False: one version alone, everything SAME

    @property
    def changed(self) -> bool:
        return any(s.status != DiffStatus.SAME for s in self.stages) or any(
            t != DiffStatus.SAME for t in self.transitions.values())

    def words(self) -> list[str]:
        """The changes in plain words, for the page and the change request."""
        out: list[str] = []
        for s in self.stages:
            if s.status == DiffStatus.ADDED:
                out.append(f"stage {s.name} added")
            elif s.status == DiffStatus.REMOVED:
                out.append(f"stage {s.name} removed")
            for attr, (a, b) in s.changed.items():
                out.append(f"{s.name}: {attr} {a.removeprefix('SLA ')} → {b.removeprefix('SLA ')}")
            for task, st in s.tasks.items():
                if st != DiffStatus.SAME:
                    out.append(f"{s.name}: task '{task}' {st}")
        for (a, b), st in self.transitions.items():
            if st != DiffStatus.SAME and not _stage_level(self, a, b):
                out.append(f"transition {a} → {b} {st}")
        return out


def _stage_level(d: ModelDiff, a: str, b: str) -> bool:
    """A transition that only changed because its stage was added or removed is said with the stage."""
    status = {s.name: s.status for s in d.stages}
    return DiffStatus.ADDED in (status.get(a), status.get(b)) or DiffStatus.REMOVED in (status.get(a), status.get(b))


def _owner(sd: StageDef) -> str:
    return sd.owner_role or "none"


def _stage_changes(old: StageDef, new: StageDef) -> tuple[dict[str, tuple[str, str]], dict[str, DiffStatus]]:
    changed: dict[str, tuple[str, str]] = {}
    if sla_text(old) != sla_text(new):
        changed["SLA"] = (sla_text(old), sla_text(new))
    if _owner(old) != _owner(new):
        changed["owner"] = (_owner(old), _owner(new))
    if old.final != new.final:
        changed["final"] = (str(old.final).lower(), str(new.final).lower())
    if (old.label or old.name) != (new.label or new.name):
        changed["label"] = (old.label or old.name, new.label or new.name)
    old_tasks = {t.name for t in old.tasks}
    new_tasks = {t.name for t in new.tasks}
    tasks = {t.name: (DiffStatus.SAME if t.name in old_tasks else DiffStatus.ADDED) for t in new.tasks}
    tasks.update({t.name: DiffStatus.REMOVED for t in old.tasks if t.name not in new_tasks})
    return changed, tasks


def diff_model(new: CaseTypeDef, old: CaseTypeDef | None = None) -> ModelDiff:
    """`new` alone (old=None), or what changed from `old` to `new`."""
    if old is None:
        stages = [StageDiff(s.name, DiffStatus.SAME, s, tasks={t.name: DiffStatus.SAME for t in s.tasks})
                  for s in new.stages]
        trans = {(s.name, t): DiffStatus.SAME for s in new.stages for t in s.transitions}
        return ModelDiff(stages, trans, compared=False)
    out: list[StageDiff] = []
    for s in new.stages:
        o = old.stage(s.name)
        if o is None:
            out.append(StageDiff(s.name, DiffStatus.ADDED, s, tasks={t.name: DiffStatus.ADDED for t in s.tasks}))
            continue
        changed, tasks = _stage_changes(o, s)
        status = DiffStatus.CHANGED if changed or any(v != DiffStatus.SAME for v in tasks.values()) else DiffStatus.SAME
        out.append(StageDiff(s.name, status, s, o, changed, tasks))
    # Removed stages go right after the stage that preceded them in the old version.
    for i, s in enumerate(old.stages):
        if new.stage(s.name) is not None:
            continue
        removed = StageDiff(s.name, DiffStatus.REMOVED, s, s, tasks={t.name: DiffStatus.REMOVED for t in s.tasks})
        prev = old.stages[i - 1].name if i else None
        at = next((k + 1 for k, d in enumerate(out) if d.name == prev), 0 if prev is None else len(out))
        out.insert(at, removed)
    old_t = {(s.name, t) for s in old.stages for t in s.transitions}
    new_t = {(s.name, t) for s in new.stages for t in s.transitions}
    trans = {}
    for d in out:
        for t in d.stage.transitions if d.status != DiffStatus.REMOVED else []:
            trans[(d.name, t)] = DiffStatus.SAME if (d.name, t) in old_t else DiffStatus.ADDED
        old_stage = d.old if d.old is not None else None
        for t in old_stage.transitions if old_stage is not None else []:
            if (d.name, t) not in new_t:
                trans[(d.name, t)] = DiffStatus.REMOVED
    return ModelDiff(out, trans, compared=True)
