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
    if decision.review_status != "pending" or decision.outcome != "suggested":
        return False
    return bool(decision.owner_role) and decision.owner_role in principal.roles


def accept_decision(session: Session, principal: Principal, decision_id: int) -> Any:
    from casemgr.governance import service as gov

    return gov.accept_suggestion(session, decision_id, actor=principal.actor, roles=principal.roles)


def reject_decision(session: Session, principal: Principal, decision_id: int, reason: str) -> Any:
    from casemgr.governance import service as gov

    return gov.reject_suggestion(session, decision_id, actor=principal.actor, roles=principal.roles,
                                 reason=reason[:60], comment=reason)


# ---------------------------------------------------------------- intake: replies and quarantine


def send_reply(session: Session, principal: Principal, case_id: int, body: str, subject: str | None,
               version: int | None) -> Any:
    fn = find("casemgr.intake.outbound", "send_reply") or find("casemgr.intake.service", "send_reply") \
        or find("casemgr.intake", "send_reply")
    if fn is None:
        raise missing("sending replies (intake outbound service)")
    return call_flexible(fn, session=session, case_id=case_id, body=body, text=body, subject=subject, actor=principal.actor,
                         expected_version=version, version=version, principal=principal)


def reprocess_quarantined(session: Session, principal: Principal, item_id: int) -> Any:
    fn = find("casemgr.intake.quarantine", "reprocess") or find("casemgr.intake.service", "reprocess_quarantined",
                                                                   "reprocess")
    if fn is None:
        raise missing("reprocessing quarantined messages (intake service)")
    return call_flexible(fn, session=session, item_id=item_id, quarantine_id=item_id, id=item_id,
                         actor=principal.actor)
