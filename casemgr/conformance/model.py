"""The designed process of a case type, as conformance reads it: allowed moves, normal order, owner roles."""

from __future__ import annotations

from dataclasses import dataclass

from casemgr.casetypes.schema import CaseTypeDef


@dataclass(frozen=True)
class Design:
    case_type: str
    initial: str
    stages: tuple[str, ...]  # in the file's order, which is the normal order of the process
    moves: frozenset[tuple[str, str]]  # designed transitions (from, to)
    finals: frozenset[str]
    optional: frozenset[str]  # waiting stages: passing over one is not a skipped stage
    owner: dict[str, str | None]
    normal_end: str | None  # the first final stage: later final stages are other ways out (cancelled, rejected)

    def index(self, stage: str) -> int | None:
        try:
            return self.stages.index(stage)
        except ValueError:
            return None

    def skipped(self, a: str, b: str) -> list[str]:
        """Stages of the normal order strictly between a and b that a forward move a→b passes over (final and
        waiting stages are not work that can be skipped; leaving by another way out than the normal end, such
        as cancelled or rejected, skips nothing)."""
        ia, ib = self.index(a), self.index(b)
        if ia is None or ib is None or ib <= ia + 1 or (b in self.finals and b != self.normal_end):
            return []
        return [s for s in self.stages[ia + 1:ib] if s not in self.finals and s not in self.optional]

    def is_back(self, a: str, b: str) -> bool:
        ia, ib = self.index(a), self.index(b)
        return ia is not None and ib is not None and ib < ia


def design_of(ct: CaseTypeDef) -> Design:
    return Design(
        case_type=ct.name,
        initial=ct.first_stage,
        stages=tuple(ct.stage_names),
        moves=frozenset((s.name, t) for s in ct.stages for t in s.transitions),
        finals=frozenset(s.name for s in ct.stages if s.final),
        optional=frozenset(s.name for s in ct.stages if s.waits_on_customer),
        owner={s.name: s.owner_role for s in ct.stages},
        normal_end=next((s.name for s in ct.stages if s.final), None),
    )
