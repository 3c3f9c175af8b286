"""What every decision kind is: its value schema, its checks against a case, and how it changes the case.

A kind never decides whether AI output applies (that is the pure `governance.decide.decide`, which only calls
the checks here) and never writes except through `apply`, inside one `casemgr.cases.change` unit of work.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict
from sqlmodel import Session

from casemgr.cases.change import change

if TYPE_CHECKING:
    from casemgr.cases.change import Change
    from casemgr.cases.models import Case
    from casemgr.governance.decide import AIOutput, CaseFacts
    from casemgr.governance.policy import Policy


class Value(BaseModel):
    """Base of the value schemas: what an AI output of a kind carries (extra keys are tolerated)."""

    model_config = ConfigDict(extra="allow")


class DecisionKind:
    """One decision kind. Subclasses live one per file in this package and register with @register."""

    name: ClassVar[str]
    rank: ClassVar[int] = 100  # order in listings and policy error messages
    required: ClassVar[bool] = True  # every AI policy must govern it
    value_schema: ClassVar[type[BaseModel]] = Value
    case_field: ClassVar[str | None] = None  # the case attribute it sets (None: adds a note/task, ...)
    uses_field: ClassVar[bool] = False  # the output names the case field it sets (classify)
    revertible: ClassVar[bool] = False  # its applied value can be put back on override
    reroutes: ClassVar[bool] = False  # it changes facts the rules read: routing runs again after it
    # `current`/`set` read and write only the case object (no session, no other rows): the batch writer
    # (governance.enrich_plan) may apply it to a plain copy of the case
    plain: ClassVar[bool] = False
    # The most a policy may let AI do with this kind ("suggest": a person always acts; a policy saying auto is
    # refused with file:line).
    max_mode: ClassVar[str] = "auto"

    # ------------------------------------------------------------ pure (decide() may call these)

    def target_field(self, output: AIOutput) -> str | None:
        return output.field if self.uses_field else self.case_field

    def invalid(self, facts: CaseFacts, value: dict[str, Any], output: AIOutput) -> str | None:
        """Why this value cannot apply to this case (None when it can). No I/O."""
        return None

    def over_limit(self, policy: Policy, facts: CaseFacts, output: AIOutput) -> str | None:
        """Why this otherwise valid output needs a person (a policy limit), or None."""
        return None

    def category(self, output: AIOutput) -> str | None:
        """The category the output itself names (it picks the per-category threshold)."""
        return None

    # ------------------------------------------------------------ the case (database)

    def current(self, session: Session, case: Case, field: str | None) -> dict[str, Any]:
        """The case's value as this kind sees it (revertible kinds)."""
        return {}

    def write(self, ch: Change, field: str | None, value: dict[str, Any]) -> tuple[dict[str, Any] | None,
                                                                                 dict[str, Any]]:
        """Change `ch.case` for this value; returns (previous value when revertible, audit after)."""
        before = self.current(ch.session, ch.case, field)
        self.set(ch.session, ch.case, field, value)
        return before, self.current(ch.session, ch.case, field)

    def set(self, session: Session, case: Case, field: str | None, value: dict[str, Any]) -> None:
        raise NotImplementedError(f"{self.name} has no case value")

    def audit_values(self, before: dict[str, Any] | None, after: dict[str, Any], case: Case
                     ) -> tuple[dict[str, Any] | None, dict[str, Any]]:
        """What the audit event shows (a kind with a large value names it instead of copying it)."""
        return before, after

    def apply(self, session: Session, case: Case, field: str | None, value: dict[str, Any], *, actor: str,
              action: str, entity: str, route: bool) -> tuple[Case, dict[str, Any] | None]:
        """Apply the value as one audited case change; returns (case, previous value when revertible)."""
        with change(session, case.id or 0, case.version, actor, action, entity=entity) as ch:
            before, after = self.write(ch, field, value)
            shown_before, shown_after = self.audit_values(before, after, ch.case)
            ch.audit(before=small(shown_before), after={**small(shown_after), "version": ch.case.version,
                                                         "kind": self.name})
            if route and self.reroutes:
                ch.reroute(f"{action} {self.name}")
        return ch.case, before if self.revertible else None


class StageMove(DecisionKind):
    """Kinds that move the case to another stage (`value.to_stage`): applied as a case transition."""

    case_field = "stage"
    proposal_order: ClassVar[int] = 1  # lower is asked first by `stage_moves` (more specific kinds)

    class Schema(Value):
        to_stage: str

    value_schema = Schema

    def invalid(self, facts: CaseFacts, value: dict[str, Any], output: AIOutput) -> str | None:
        to = value.get("to_stage")
        if to not in facts.transitions:
            return f"cannot move from {facts.stage!r} to {to!r}; allowed: {', '.join(facts.transitions) or '(none)'}"
        return None

    def proposes(self, case: Any, to_stage: str, final: bool) -> bool:
        """Whether an AI suggestion to move `case` to `to_stage` is this kind (enrich asks in rank order)."""
        return False

    def apply(self, session: Session, case: Case, field: str | None, value: dict[str, Any], *, actor: str,
              action: str, entity: str, route: bool) -> tuple[Case, dict[str, Any] | None]:
        from casemgr.cases import service as cases

        # The case service's transition is the change: claim, stage entry, audit and re-routing.
        before = {"stage": case.stage}
        # A resolution code is never the AI's: accept_suggestion adds the accepting person's choice.
        case = cases.transition(session, case.id or 0, value["to_stage"], case.version, actor,
                                reason=f"{action} ({entity})", resolution_code=value.get("resolution_code") or None)
        return case, before


def small(d: dict[str, Any] | None) -> dict[str, Any]:
    """Audit-sized copy: long texts cut, large structures named."""
    from casemgr.limits import AUDIT_VALUE_CHARS, AUDIT_VALUE_REPR_CHARS

    if not d:
        return {}
    out = {}
    for k, v in d.items():
        if isinstance(v, str) and len(v) > AUDIT_VALUE_CHARS:
            v = v[:AUDIT_VALUE_CHARS] + "…"
        elif isinstance(v, dict | list) and len(str(v)) > AUDIT_VALUE_REPR_CHARS:
            v = "(large value)"
        out[k] = v
    return out
