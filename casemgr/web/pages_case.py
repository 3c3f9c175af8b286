"""/cases/{id}: header, AI panel, routing explanation, messages + reply, tasks with SOPs, stage buttons, timeline.

Every form carries the case version it was rendered from; a stale version comes back as a clear
"changed by X, reload" message and the user's typed text is kept, so nothing is lost or overwritten.
Writes run in their own write_session so the commit is done before the redirect is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlmodel import Session, col

from casemgr.bulk import ownership
from casemgr.cases import service
from casemgr.cases.models import Case, Party
from casemgr.casetypes.registry import extracts_contracts, get_registry
from casemgr.casetypes.versions import case_type_of
from casemgr.customers import service as customers
from casemgr.db import read_session, write_session
from casemgr.errors import Conflict, DomainError, NotFound, StaleVersion, ValidationFailed
from casemgr.governance import draft_outcome
from casemgr.governance.enums import DecisionOutcome
from casemgr.governance.models import AIDecision
from casemgr.intake.models import Attachment, Message
from casemgr.limits import DOWNLOAD_NAME_CHARS
from casemgr.notifications.service import notify_note_mentions
from casemgr.users.service import Principal
from casemgr.views.sla_display import zone
from casemgr.web import case_story, integrations
from casemgr.web.access import roles_for
from casemgr.web.deps import ReadSession, page
from casemgr.web.pages_common import redirect, render
from casemgr.web.pages_queue import assignable_users, user_zone_name, usernames
from casemgr.web.templating import templates

router = APIRouter(tags=["pages"], include_in_schema=False)
templates.env.filters["mentions"] = case_story.mentions_html

Reader = Annotated[Principal, Depends(page("cases.read"))]
Writer = Annotated[Principal, Depends(page("cases.write"))]
Decider = Annotated[Principal, Depends(page("ai.decide"))]


def _ai_view(case: Case) -> dict[str, Any]:
    """The AI's view stored on the case by the governance enrichment (classification, next-step suggestion,
    and the summary once the policy applied it)."""
    ai = case.ai or {}
    summary = ai.get("summary")
    if isinstance(summary, dict):
        summary = summary.get("summary") or summary.get("text")
    cls = ai.get("classification") or {}
    if not isinstance(cls, dict):
        cls = {"category": str(cls)}
    # Every AI field with its confidence and its evidence (cue words, the sentence that carried it).
    signals = [(name, cls.get(name), cls.get(f"{name}_confidence"), cls.get(f"{name}_evidence") or [])
               for name in ("urgency", "intent", "sentiment") if cls.get(name)]
    facts = {k: v for k, v in (ai.get("key_facts") or {}).items() if v} if isinstance(ai.get("key_facts"), dict) else {}
    nxt = ai.get("suggestion") if isinstance(ai.get("suggestion"), dict) else None
    scope = cls.get("scope") if isinstance(cls.get("scope"), dict) else None
    return {"summary": summary, "label": cls.get("category") or cls.get("label"), "confidence": cls.get("confidence"),
            "evidence": cls.get("category_evidence") or [], "signals": signals, "key_facts": facts,
            "next": nxt if nxt and nxt.get("action") else None, "steps": ai.get("next_steps") or [],
            "scope": scope if scope and scope.get("needs_human") else None,
            "model": ai.get("model"), "error": ai.get("last_error")}


CONTRACT_TERMS = ("effective_date", "agreement_date", "expiration_date", "renewal_term",
                  "notice_period_to_terminate_renewal", "governing_law")


def _contract_view(case: Case) -> dict[str, Any] | None:
    if not extracts_contracts(case.case_type):
        return None
    c = case.contract or {}
    terms: dict[str, Any] = {}
    if c.get("parties"):
        terms["parties"] = ", ".join(str(p) for p in c["parties"])
    agreement = c.get("agreement") or {}
    if isinstance(agreement, dict) and (agreement.get("title") or agreement.get("type")):
        terms["agreement"] = " · ".join(str(x) for x in (agreement.get("title"), agreement.get("type")) if x)
    terms.update({k: c[k] for k in CONTRACT_TERMS if c.get(k)})
    clauses = c.get("clauses") or {}
    rows = [{"name": k, **(v if isinstance(v, dict) else {"present": bool(v)})} for k, v in clauses.items()]
    rows.sort(key=lambda r: (not r.get("present"), r["name"]))
    renewal = c.get("renewal_date") or c.get("expiration_date") or case.fields.get("expiration_date")
    return {"terms": terms, "clauses": rows, "renewal_date": renewal, "fields": case.fields,
            "extracted": bool(c)}


def _task_sop(session: Session, reg: Any, t: Any) -> str | None:
    """The work instruction of a task: as it was when the task was done (its SOP version), else the one in force."""
    if t.sop_version:
        from casemgr.casetypes.sops import text_of_version

        done_under = text_of_version(session, t.sop, t.sop_version)
        if done_under is not None:
            return done_under
    return reg.sop_text(t.sop)  # type: ignore[no-any-return]


def _process_version(session: Session, case: Case) -> str:
    from casemgr.casetypes.versions import label

    return label(session, case.case_type_version)


def case_context(session: Session, principal: Principal, case_id: int) -> dict[str, Any]:
    case = service.get_case(session, case_id)
    reg = get_registry()
    ct = case_type_of(case, session)  # the version the case runs on (issue 22)
    stage = ct.stage(case.stage)
    tasks = service.list_tasks(session, case_id)
    messages = list(session.execute(
        select(Message).where(Message.case_id == case_id).order_by(Message.created_at, Message.id)  # type: ignore[arg-type]
    ).scalars())
    atts: dict[int, list[Attachment]] = {}
    if messages:
        for a in session.execute(select(Attachment).where(
                col(Attachment.message_id).in_([m.id for m in messages if m.id is not None]))).scalars():
            atts.setdefault(a.message_id, []).append(a)
    decisions = list(session.execute(
        select(AIDecision).where(AIDecision.case_id == case_id).order_by(AIDecision.id)  # type: ignore[arg-type]
    ).scalars())
    can_write = principal.has_any(roles_for("cases.write"))
    suggestions = [
        {"d": d, "can_decide": principal.has_any(roles_for("ai.decide")) and integrations.can_decide(session, principal, d),
         # Accepting a suggestion that closes the case asks the person for the root cause (the AI never picks it).
         "resolution_codes": _closing_codes(ct, d)}
        for d in decisions if d.outcome == DecisionOutcome.SUGGESTED
    ]
    others = [d for d in decisions if d.outcome != DecisionOutcome.SUGGESTED]
    party = session.get(Party, case.party_id) if case.party_id else None
    names = usernames(session, {case.assignee_id} if case.assignee_id else set())
    rules = case.rules_result or {}
    notes = service.list_notes(session, case_id)
    tz_name = user_zone_name(session, principal)
    merged_into = session.get(Case, case.merged_into_id) if case.merged_into_id else None
    customer = None
    if party is not None and party.email:
        view = customers.customer(session, party.email, limit=12)
        customer = {"email": view.email, "addresses": view.addresses,
                    "others": [c for c in view.cases if c.id != case.id][:10], "names": view.names}
    return {
        "case": case, "ct": ct, "stage_def": stage, "party": party,
        "assignee": names.get(case.assignee_id or -1),
        "mine": case.assignee_id is not None and case.assignee_id == principal.user_id,
        "can_assign": principal.has_any(roles_for("cases.assign")),
        "is_lead": principal.has_any(ownership.REASSIGN_ROLES),
        "users": assignable_users(session) if principal.has_any(ownership.REASSIGN_ROLES) else [],
        "transitions": [(t, (sd.label if (sd := ct.stage(t)) else None) or t) for t in service.allowed_transitions(case)]
        if can_write else [],
        # Closing a type with resolution codes needs one (issue 22): the form offers them next to the close button.
        "resolution_codes": ct.resolution_codes if can_write and any(
            (sd := ct.stage(t)) is not None and sd.final for t in service.allowed_transitions(case)) else [],
        "can_write": can_write,
        "tasks": [{"t": t, "sop": _task_sop(session, reg, t)} for t in tasks],
        "process_version": _process_version(session, case),
        "messages": [{"m": m, "attachments": atts.get(m.id or -1, [])} for m in messages],
        "notes": notes,
        "conversation": case_story.conversation(session, case, messages, atts, notes, decisions),
        "ai": _ai_view(case), "suggestions": suggestions, "applied": others,
        "fired": rules.get("fired") or [], "rules": rules,
        "timeline": case_story.timeline(session, case_id),
        "contract": _contract_view(case),
        "customer": customer, "merged_into": merged_into,
        "tz": zone(tz_name), "take_over_from": None, "delivery_words": case_story.DELIVERY_WORDS,
        "macros": _macros_for(case) if can_write else [],
        "ai_draft": _draft_view(session, case_id) if can_write and case.status == "open" else None,
    }


def _draft_view(session: Session, case_id: int) -> dict[str, Any] | None:
    """The AI reply draft waiting in the reply box (a pending draft_reply suggestion), with its confidence and
    evidence; None when there is none (a draft the policy refused is never one)."""
    d = draft_outcome.pending_draft(session, case_id)
    if d is None or not isinstance((d.proposed or {}).get("text"), str):
        return None
    return {"id": d.id, "text": d.proposed["text"], "confidence": d.confidence,
            "evidence": [str(e) for e in (d.proposed.get("evidence") or [])][:12]}


def _macros_for(case: Case) -> list[Any]:
    from casemgr.macros import service as macros
    from casemgr.policyfile import PolicyFileError

    try:
        return macros.for_case(case)
    except PolicyFileError:
        return []  # a broken macro file must not take the case page down; `casemgr macros check` names it


def _page(request: Request, principal: Principal, case_id: int, *, error: str | None = None,
          stale: dict[str, Any] | None = None, drafts: dict[str, str] | None = None, status_code: int = 200,
          notice: str | None = None, take_over_from: str | None = None) -> HTMLResponse:
    with read_session() as s:
        ctx = case_context(s, principal, case_id)
    ctx.update({"error": error, "stale": stale, "drafts": drafts or {}, "notice": notice,
                "take_over_from": take_over_from, "tab": "conversation"})
    return render(request, "case.html", ctx, status_code=status_code)


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, case_id: int, session: ReadSession, who: Reader, done: str | None = None,
              tab: str = "") -> Response:
    ctx = case_context(session, who, case_id)
    ctx["tab"] = "audit" if tab == "audit" else "conversation"
    notices = {"reply": "Reply sent.", "transition": "Stage changed.", "note": "Note added.", "task": "Task completed.",
               "accept": "AI suggestion accepted.", "reject": "AI suggestion rejected.", "claim": "The case is yours.",
               "assign": "Owner changed.", "macro": "Macro applied."}
    ctx.update({"error": None, "stale": None, "drafts": {}, "notice": notices.get(done or "")})
    return render(request, "case.html", ctx)


def _act(request: Request, who: Principal, case_id: int, done: str, fn: Callable[[Session], Any],
         drafts: dict[str, str] | None = None) -> Response:
    try:
        with write_session() as s:
            fn(s)
    except StaleVersion as exc:
        stale = {"by": exc.details.get("changed_by") or "someone", "version": exc.details.get("current_version"),
                 "message": exc.message}
        return _page(request, who, case_id, stale=stale, drafts=drafts, status_code=409)
    except NotFound:
        raise
    except DomainError as exc:
        take_over = str(exc.details["assignee"]) if isinstance(exc, Conflict) and exc.details.get("assignee") else None
        return _page(request, who, case_id, error=exc.message, drafts=drafts, status_code=exc.status_code,
                     take_over_from=take_over)
    return redirect(f"/cases/{case_id}?done={quote(done)}#{done}")


@router.post("/cases/{case_id}/transition")
def transition(request: Request, case_id: int, who: Writer, to_stage: Annotated[str, Form(max_length=50)],
               version: Annotated[int, Form(ge=1)], reason: Annotated[str, Form(max_length=2000)] = "",
               resolution_code: Annotated[str, Form(max_length=50)] = "") -> Response:
    return _act(request, who, case_id, "transition",
                lambda s: service.transition(s, case_id, to_stage, version, actor=who.actor, reason=reason or None,
                                             resolution_code=resolution_code or None))


@router.post("/cases/{case_id}/notes")
def add_note(request: Request, case_id: int, who: Writer, body: Annotated[str, Form(max_length=20000)],
             version: Annotated[int, Form(ge=1)]) -> Response:
    def run(s: Session) -> Any:
        if not body.strip():
            raise ValidationFailed("the note is empty")
        note = service.add_note(s, case_id, body, who.actor, version)
        notify_note_mentions(s, case_id, body, who.username, who.user_id)
        return note

    return _act(request, who, case_id, "note", run, drafts={"note": body})


Assigner = Annotated[Principal, Depends(page("cases.assign"))]
MacroUser = Annotated[Principal, Depends(page("macros.apply"))]


@router.post("/cases/{case_id}/macros/{name}")
def apply_macro(request: Request, case_id: int, name: str, who: MacroUser, version: Annotated[int, Form(ge=1)],
                body: Annotated[str, Form(max_length=50000)] = "") -> Response:
    """One audited change with the form's version; the agent's edited reply goes out in the same transaction."""
    from casemgr.macros import service as macros

    return _act(request, who, case_id, "macro",
                lambda s: macros.apply(s, case_id, name, version, who, reply=body), drafts={"reply": body})


@router.post("/cases/{case_id}/claim")
def claim(request: Request, case_id: int, who: Assigner, version: Annotated[int, Form(ge=1)],
          take_over: Annotated[str, Form(max_length=5)] = "") -> Response:
    """Claim takes only an unassigned case; someone else's needs the explicit take-over (their owner is told)."""
    return _act(request, who, case_id, "claim",
                lambda s: ownership.claim(s, case_id, version, who, take_over=take_over == "yes"))


@router.post("/cases/{case_id}/assign")
def assign(request: Request, case_id: int, who: Assigner, version: Annotated[int, Form(ge=1)],
           assignee: Annotated[str, Form(max_length=100)] = "") -> Response:
    return _act(request, who, case_id, "assign",
                lambda s: ownership.assign(s, case_id, version, who, assignee or None))


@router.post("/cases/{case_id}/reply")
def reply(request: Request, case_id: int, who: Writer, body: Annotated[str, Form(max_length=50000)],
          version: Annotated[int, Form(ge=1)], ai_decision: Annotated[int | None, Form(ge=1)] = None) -> Response:
    """Send the agent's reply; when it started from the AI draft (`ai_decision`), the draft's outcome and how much
    the agent changed it are recorded in the same transaction."""
    def run(s: Session) -> None:
        if not body.strip():
            raise ValidationFailed("the reply is empty")
        msg = integrations.send_reply(s, who, case_id, body, version)
        if ai_decision is not None:
            draft_outcome.record_sent(s, case_id, ai_decision, body, actor=who.actor, message_id=getattr(msg, "id", None))

    return _act(request, who, case_id, "reply", run, drafts={"reply": body})


@router.post("/cases/{case_id}/tasks/{task_id}/complete")
def complete_task(request: Request, case_id: int, task_id: int, who: Writer,
                  version: Annotated[int, Form(ge=1)]) -> Response:
    return _act(request, who, case_id, "task",
                lambda s: service.complete_task(s, case_id, task_id, who.actor, version))


def _decision_on_case(s: Session, case_id: int, decision_id: int, who: Principal) -> AIDecision:
    d = s.get(AIDecision, decision_id)
    if d is None or d.case_id != case_id:
        raise NotFound(f"AI decision {decision_id} not found on case {case_id}")
    if not integrations.can_decide(s, who, d):
        from casemgr.errors import PermissionDenied

        raise PermissionDenied("the AI policy does not let you decide on this suggestion")
    return d


def _closing_codes(ct: Any, d: AIDecision) -> list[Any]:
    """The resolution codes to offer beside Accept when suggestion `d` moves the case to a final stage."""
    to = (d.proposed or {}).get("to_stage") if isinstance(d.proposed, dict) else None
    target = ct.stage(to) if to else None
    return list(ct.resolution_codes) if target is not None and target.final else []


@router.post("/cases/{case_id}/ai/{decision_id}/accept")
def accept(request: Request, case_id: int, decision_id: int, who: Decider,
           resolution_code: Annotated[str, Form(max_length=50)] = "") -> Response:
    def run(s: Session) -> None:
        _decision_on_case(s, case_id, decision_id, who)
        integrations.accept_decision(s, who, decision_id, resolution_code or None)

    return _act(request, who, case_id, "accept", run)


@router.post("/cases/{case_id}/ai/{decision_id}/reject")
def reject(request: Request, case_id: int, decision_id: int, who: Decider,
           reason: Annotated[str, Form(max_length=2000)] = "") -> Response:
    def run(s: Session) -> None:
        if not reason.strip():
            raise ValidationFailed("give a reason for rejecting the suggestion", field="reason")
        _decision_on_case(s, case_id, decision_id, who)
        integrations.reject_decision(s, who, decision_id, reason.strip())

    return _act(request, who, case_id, "reject", run)


@router.get("/cases/{case_id}/attachments/{attachment_id}")
def attachment(case_id: int, attachment_id: int, session: ReadSession, _: Reader) -> Response:
    from pathlib import Path

    from casemgr.config import get_settings

    att = session.get(Attachment, attachment_id)
    msg = session.get(Message, att.message_id) if att else None
    if att is None or msg is None or msg.case_id != case_id:
        raise NotFound(f"attachment {attachment_id} not found on case {case_id}")
    base = get_settings().resolved_data_dir
    path = Path(att.storage_path)
    path = (path if path.is_absolute() else base / path).resolve()
    if base not in path.parents or not path.is_file():
        raise NotFound(f"attachment {attachment_id} content is missing")
    safe = "".join(ch for ch in att.filename if ch.isalnum() or ch in "._- ")[:DOWNLOAD_NAME_CHARS] or "attachment"
    # Always a download, never rendered by the browser: a hostile HTML or SVG attachment stays inert.
    headers = {"Content-Disposition": f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(att.filename)}",
               "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox; default-src 'none'"}
    return Response(path.read_bytes(), media_type="application/octet-stream", headers=headers)
