"""Calls into other rooms' services that land on their own schedule (governance decisions, outbound replies,
quarantine reprocessing). Each function looks the service up when called, so the UI works the moment the
service exists and says clearly when it does not yet."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from typing import Any

from sqlmodel import Session

from casemgr.errors import ServiceUnavailable
from casemgr.governance.enums import DecisionOutcome, ReviewStatus
from casemgr.limits import REASON_CODE_CHARS
from casemgr.users.service import Principal


def find(module: str, *names: str) -> Callable[..., Any] | None:
    try:
        mod = importlib.import_module(module)
    except ImportError:
        return None
    for name in names:
        fn = getattr(mod, name, None)
        if callable(fn):
            return fn  # type: ignore[no-any-return]
    return None


def call_flexible(fn: Callable[..., Any], **available: Any) -> Any:
    """Call `fn` with the keyword arguments it declares, taken from `available` (positional-only: in order)."""
    sig = inspect.signature(fn)
    args: list[Any] = []
    kwargs: dict[str, Any] = {}
    for p in sig.parameters.values():
        if p.name not in available:
            if p.default is inspect.Parameter.empty and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL):
                raise ServiceUnavailable(f"{fn.__module__}.{fn.__name__} needs {p.name!r}, which the UI cannot supply")
            continue
        if p.kind == p.POSITIONAL_ONLY:
            args.append(available[p.name])
        else:
            kwargs[p.name] = available[p.name]
    return fn(*args, **kwargs)


def missing(what: str) -> ServiceUnavailable:
    return ServiceUnavailable(f"{what} is not available yet in this build")


# ---------------------------------------------------------------- governance: AI decisions


def can_decide(session: Session, principal: Principal, decision: Any) -> bool:
    """Whether the policy lets this user accept/reject this suggestion: it is pending and routed to a role
    the user holds (the governance service enforces the same on submit)."""
    if decision.review_status != ReviewStatus.PENDING or decision.outcome != DecisionOutcome.SUGGESTED:
        return False
    return bool(decision.owner_role) and decision.owner_role in principal.roles


def accept_decision(session: Session, principal: Principal, decision_id: int,
                    resolution_code: str | None = None) -> Any:
    from casemgr.governance import service as gov

    return gov.accept_suggestion(session, decision_id, actor=principal.actor, roles=principal.roles,
                                 resolution_code=resolution_code)


def reject_decision(session: Session, principal: Principal, decision_id: int, reason: str) -> Any:
    from casemgr.governance import service as gov

    return gov.reject_suggestion(session, decision_id, actor=principal.actor, roles=principal.roles,
                                 reason=reason[:REASON_CODE_CHARS], comment=reason)


# ---------------------------------------------------------------- intake: replies and quarantine


def send_reply(session: Session, principal: Principal, case_id: int, body: str, version: int | None) -> Any:
    """Queue the agent's reply (intake's outbound service). The form's version is the one the reply claims, so a
    reply written against a stale view of the case is refused with 409 instead of crossing someone else's change."""
    from casemgr.intake.outbound import send_reply as queue_reply

    return queue_reply(session, case_id, body, principal.actor, version=version)


def reprocess_quarantined(principal: Principal, item_id: int, force: bool = False) -> Any:
    """Intake's reprocess runs its own transactions (ingest, then mark the item)."""
    from casemgr.intake.service import reprocess_quarantined as reprocess

    return reprocess(item_id, principal.actor, force=force)
