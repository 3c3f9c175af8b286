"""Run one action over many cases, each under its own optimistic lock and savepoint.

One case failing (changed meanwhile, not allowed, invalid) never stops or undoes the others, and nothing is
overwritten silently: each case gets ok / conflict / forbidden / invalid with a message. Every change is the
ordinary audited case change of that action.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from casemgr.bulk import merge as merging
from casemgr.bulk import ownership
from casemgr.bulk.enums import BulkAction, Outcome
from casemgr.bulk.schemas import BulkIn, BulkOut, BulkResult
from casemgr.cases import service
from casemgr.cases.enums import Priority
from casemgr.cases.models import Case
from casemgr.cases.schemas import CasePatch
from casemgr.casetypes.registry import get_registry
from casemgr.errors import Conflict, DomainError, InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from casemgr.users.service import Principal
from casemgr.web.access import roles_for

PRIORITIES = Priority.values()
PERMISSION_OF = {BulkAction.ASSIGN: "cases.assign", BulkAction.CLAIM: "cases.assign"}

Step = Callable[[Session, int, int], Case]


def _text(params: dict[str, Any], name: str, *, required: bool = True, max_len: int = 2000) -> str | None:
    v = params.get(name)
    if v is None or (isinstance(v, str) and not v.strip()):
        if required:
            raise ValidationFailed(f"params.{name} is required for this action", field=f"params.{name}")
        return None
    if not isinstance(v, str) or len(v) > max_len:
        raise ValidationFailed(f"params.{name} must be a string of at most {max_len} characters",
                               field=f"params.{name}")
    return v.strip()


def _final_stage(case: Case) -> str:
    ct = service.case_type_def(case)
    finals = [t for t in service.allowed_transitions(case) if (sd := ct.stage(t)) is not None and sd.final]
    if not finals:
        raise InvalidTransition(f"{case.reference or case.id} cannot be closed from stage {case.stage!r}; allowed: "
                                f"{', '.join(service.allowed_transitions(case)) or '(none)'}")
    return "closed" if "closed" in finals else finals[0]


def step_for(action: BulkAction, params: dict[str, Any], who: Principal) -> Step:
    """Validate the params once and return the per-case step (raises ValidationFailed for the whole request)."""
    actor = who.actor
    if action == BulkAction.ASSIGN:
        assignee = _text(params, "assignee", required=False, max_len=100)
        return lambda s, cid, v: ownership.assign(s, cid, v, who, assignee)
    if action == BulkAction.CLAIM:
        take_over = params.get("take_over", False) is True
        return lambda s, cid, v: ownership.claim(s, cid, v, who, take_over=take_over)
    if action == BulkAction.MOVE_QUEUE:
        queue = _text(params, "queue", max_len=80)
        if queue not in get_registry().org.queue_names:
            raise ValidationFailed(f"unknown queue {queue!r}; queues: {', '.join(sorted(get_registry().org.queue_names))}",
                                   field="params.queue")
        return lambda s, cid, v: merging.move_queue(s, cid, v, str(queue), actor)
    if action == BulkAction.SET_PRIORITY:
        priority = _text(params, "priority", max_len=20)
        if priority not in PRIORITIES:
            raise ValidationFailed(f"params.priority must be one of {', '.join(PRIORITIES)}", field="params.priority")
        return lambda s, cid, v: service.update_case(s, cid, CasePatch(version=v, priority=priority), actor)  # type: ignore[arg-type]
    # A closing move of a type with resolution codes needs params.resolution_code (issue 22): without one (or with
    # one that type lacks) such a case is `invalid` with the reason; types without codes close as before.
    code = _text(params, "resolution_code", required=False, max_len=50)

    def code_for(case: Case, to_stage: str) -> str | None:
        ct = service.case_type_def(case)
        target = ct.stage(to_stage)
        return code if ct.resolution_codes and target is not None and target.final else None

    if action == BulkAction.TRANSITION:
        to_stage = _text(params, "to_stage", max_len=50)
        reason = _text(params, "reason")

        def move(s: Session, cid: int, v: int) -> Case:
            case = service.get_case(s, cid)
            return service.transition(s, cid, str(to_stage), v, actor=actor, reason=reason,
                                      resolution_code=code_for(case, str(to_stage)))
        return move
    if action == BulkAction.CLOSE:
        reason = _text(params, "reason")

        def close(s: Session, cid: int, v: int) -> Case:
            case = service.get_case(s, cid)
            final = _final_stage(case)
            return service.transition(s, cid, final, v, actor=actor, reason=reason, resolution_code=code_for(case, final))
        return close
    raise ValidationFailed(f"unknown action {action!r}", field="action")


def _outcome(exc: DomainError) -> Outcome:
    if isinstance(exc, PermissionDenied):
        return Outcome.FORBIDDEN
    if isinstance(exc, InvalidTransition | ValidationFailed | NotFound):
        return Outcome.INVALID
    if isinstance(exc, Conflict):
        return Outcome.CONFLICT
    return Outcome.INVALID


def summary(results: list[BulkResult]) -> str:
    n = Counter(r.result for r in results)
    parts = [f"{n[Outcome.OK]} changed"]
    why = {Outcome.CONFLICT: "changed by someone else", Outcome.FORBIDDEN: "not allowed", Outcome.INVALID: "invalid"}
    skipped = [f"{n[o]} {why[o]}" for o in (Outcome.CONFLICT, Outcome.FORBIDDEN, Outcome.INVALID) if n[o]]
    if skipped:
        total = sum(n[o] for o in why)
        parts.append(f"{total} skipped: " + (why[next(o for o in why if n[o])] if len(skipped) == 1
                                              else ", ".join(skipped)))
    return ", ".join(parts)


def run(session: Session, data: BulkIn, who: Principal) -> BulkOut:
    """Apply `data.action` to every case; one savepoint per case."""
    ids = [c.id for c in data.cases]
    if len(set(ids)) != len(ids):
        raise ValidationFailed("a case appears twice in `cases`", field="cases")
    permission = PERMISSION_OF.get(data.action, "cases.write")
    if not who.has_any(roles_for(permission)):
        msg = f"{data.action.value} needs one of the roles: {', '.join(sorted(roles_for(permission)))}"
        results = [BulkResult(id=c.id, result=Outcome.FORBIDDEN, message=msg) for c in data.cases]
        return BulkOut(action=data.action, results=results, summary=summary(results))
    if data.action == BulkAction.MERGE:
        results = merging.merge_many(session, data, who)
        return BulkOut(action=data.action, results=results, summary=summary(results))
    step = step_for(data.action, data.params, who)
    results = []
    for ref in data.cases:
        try:
            with session.begin_nested():
                case = step(session, ref.id, ref.version)
                results.append(BulkResult(id=ref.id, result=Outcome.OK, message=_ok_message(data.action, case),
                                          version=case.version))
        except DomainError as exc:
            results.append(BulkResult(id=ref.id, result=_outcome(exc), message=exc.message))
    return BulkOut(action=data.action, results=results, summary=summary(results))


def _ok_message(action: BulkAction, case: Case) -> str:
    return {
        BulkAction.ASSIGN: "assigned", BulkAction.CLAIM: "claimed", BulkAction.MOVE_QUEUE: f"moved to {case.queue}",
        BulkAction.SET_PRIORITY: f"priority {case.priority}", BulkAction.TRANSITION: f"now in {case.stage}",
        BulkAction.CLOSE: f"closed ({case.stage})",
    }.get(action, "changed")
