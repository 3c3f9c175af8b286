"""The case page's two readings of a case: one conversation (customer mail, replies with delivery state,
internal notes and AI suggestions in time order) and the audit timeline told in words
("priority normal → urgent by AI, policy v3, confidence 0.91"), not raw event codes."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import select
from sqlmodel import Session, col

from casemgr.audit import service as audit
from casemgr.cases.models import Case, Note
from casemgr.documents.models import PolicyVersion
from casemgr.governance.models import AIDecision
from casemgr.intake.models import Attachment, Message
from casemgr.notifications.service import MENTION
from casemgr.users.models import User

SKIP_KEYS = {"version", "updated_at", "stage_entered_at", "sla_hours", "kind", "reason", "undo_task"}
FIELD_WORDS = {"assignee_id": "owner", "sla_due_at": "SLA due", "sla_state": "SLA", "owner_role": "owner role",
               "waiting_on_customer": "waiting on customer", "ai_status": "AI status", "merged_into_id": "merged into"}
DELIVERY_WORDS = {"queued": "queued", "sent": "sent", "delivered": "delivered", "failed": "failed", "stored": "stored",
                  "outbox": "in local outbox", "bounced": "bounced"}


def actor_words(actor: str) -> str:
    kind, _, name = actor.partition(":")
    if kind == "user":
        return name
    if kind == "ai":
        return "AI"
    if kind == "apikey":
        return f"API key {name}"
    if actor == "worker" or kind == "worker":
        return "the SLA worker"
    if kind == "system":
        return f"system ({name})" if name else "system"
    return actor


def _value(key: str, v: Any, users: dict[int, str]) -> str:
    if v is None or v == "":
        return "none"
    if key == "assignee_id" and isinstance(v, int):
        return users.get(v, f"user {v}")
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, str) and re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d", v):
        return v[:16].replace("T", " ") + " UTC"
    if isinstance(v, datetime):
        return f"{v:%Y-%m-%d %H:%M} UTC"
    if isinstance(v, dict):
        return ", ".join(f"{k} {_value(k, x, users)}" for k, x in list(v.items())[:6]) or "none"
    if isinstance(v, list):
        return ", ".join(str(x) for x in v[:8]) or "none"
    return str(v)[:120]


def changes(before: dict[str, Any] | None, after: dict[str, Any] | None, users: dict[int, str]) -> list[str]:
    """["priority normal → urgent", "queue general → billing", ...] for the keys that changed."""
    before, after = before or {}, after or {}
    out = []
    for key, new in after.items():
        if key in SKIP_KEYS or key.startswith("_"):
            continue
        old = before.get(key)
        if old == new:
            continue
        label = FIELD_WORDS.get(key, key.replace("_", " "))
        if key == "fields" and isinstance(new, dict):
            for fk, fv in new.items():
                ov = old.get(fk) if isinstance(old, dict) else None
                if ov != fv:
                    out.append(f"{fk.replace('_', ' ')} {_value(fk, ov, users)} → {_value(fk, fv, users)}")
            continue
        if key in before:
            out.append(f"{label} {_value(key, old, users)} → {_value(key, new, users)}")
        else:
            out.append(f"{label} {_value(key, new, users)}")
    return out


@dataclass
class StoryLine:
    ts: datetime
    actor: str
    action: str
    text: str
    entity: str | None


def _policy_labels(session: Session) -> dict[str, str]:
    rows = session.execute(select(col(PolicyVersion.version)).where(col(PolicyVersion.kind) == "ai-policy")
                           .order_by(col(PolicyVersion.id))).scalars().all()
    labels: dict[str, str] = {}
    for v in rows:
        labels.setdefault(v, f"v{len(labels) + 1}")
    return labels


def timeline(session: Session, case_id: int) -> list[StoryLine]:
    events = audit.events_for_case(session, case_id)
    ids = {int(e.entity.split(":", 1)[1]) for e in events
           if e.entity and e.entity.startswith("ai_decision:") and e.entity.split(":", 1)[1].isdigit()}
    decisions = {d.id: d for d in session.execute(select(AIDecision).where(col(AIDecision.id).in_(ids))).scalars()} \
        if ids else {}
    user_ids = {v for e in events for part in (e.before or {}, e.after or {})
                for k, v in part.items() if k == "assignee_id" and isinstance(v, int)}
    users = {int(i): n for i, n in session.execute(select(col(User.id), col(User.username))
                                                   .where(col(User.id).in_(user_ids)))} if user_ids else {}
    policies = _policy_labels(session) if decisions else {}
    return [StoryLine(e.ts, e.actor, e.action, describe(e.action, e.actor, e.before, e.after, e.entity, decisions,
                                                        policies, users), e.entity) for e in events]


def describe(action: str, actor: str, before: dict[str, Any] | None, after: dict[str, Any] | None,
             entity: str | None, decisions: dict[Any, AIDecision], policies: dict[str, str],
             users: dict[int, str]) -> str:
    a = after or {}
    who = actor_words(actor)
    diff = changes(before, after, users)
    said = "; ".join(diff)
    if action == "case.created":
        return f"case opened by {who} ({a.get('case_type', 'case')}, priority {a.get('priority', 'normal')}, " \
               f"queue {a.get('queue', '?')})"
    if action == "case.transitioned":
        reason = f" — {a['reason']}" if a.get("reason") else ""
        return f"stage {(before or {}).get('stage', '?')} → {a.get('stage', '?')} by {who}{reason}"
    if action == "case.assigned":
        to = a.get("assignee") or _value("assignee_id", a.get("assignee_id"), users)
        return f"assigned to {to} by {who}" if to and to != "none" else f"unassigned by {who}"
    if action == "case.routed":
        fired = a.get("fired") or []
        names = [f.get("rule") if isinstance(f, dict) else str(f) for f in fired]
        rules = f"rules {', '.join(n for n in names if n)}" if names else "no rule fired (default queue)"
        return f"routed to queue {a.get('queue', '?')} by {rules}"
    if action == "note.added":
        return f"internal note by {who}"
    if action == "task.added":
        return f"task “{a.get('name', '?')}” added by {who}"
    if action == "task.completed":
        return f"task completed by {who}"
    if action.startswith("message."):
        return {"message.received": "customer message received",
                "message.reply_queued": f"reply to the customer by {who}"}.get(action, f"{action[8:].replace('_', ' ')} by {who}")
    if action == "case.merged":
        moved = a.get("moved") or {}
        return f"merged in {', '.join(a.get('merged') or [])} by {who} ({moved.get('messages', 0)} messages, " \
               f"{moved.get('notes', 0)} notes moved)"
    if action == "case.merged_into":
        return f"merged into {a.get('merged_into', '?')} by {who}"
    if action == "macro.applied":
        return f"macro “{a.get('macro', '?')}” applied by {who}" + (f": {said}" if said else "")
    if action.startswith("ai."):
        d = None
        if entity and entity.startswith("ai_decision:"):
            key = entity.split(":", 1)[1]
            d = decisions.get(int(key)) if key.isdigit() else None
        how = []
        if d is not None:
            how.append(f"policy {policies.get(d.policy_version, d.policy_version[:8])}")
            if d.confidence is not None:
                how.append(f"confidence {d.confidence:.2f}")
        detail = f", {', '.join(how)}" if how else ""
        kind = (d.kind if d else a.get("kind") or "suggestion").replace("_", " ")
        if action == "ai.applied":
            return f"{said or kind} by AI{detail}"
        if action == "ai.suggestion_accepted":
            return f"AI suggestion ({kind}) accepted by {who}" + (f": {said}" if said else "") + detail
        if action == "ai.suggestion_rejected":
            return f"AI suggestion ({kind}) rejected by {who}" + (f" — {a['reason']}" if a.get("reason") else "")
        if action == "ai.draft_sent":
            dist = a.get("edit_distance")
            how_much = f", {dist * 100:.0f}% changed (edit distance {dist:.2f})" if isinstance(dist, int | float) else ""
            return f"AI draft reply edited and sent by {who}{how_much}{detail}"
        if action == "ai.overridden":
            return f"AI decision ({kind}) overridden by {who}" + (f": {said}" if said else "")
        return f"{action[3:].replace('_', ' ')} by {who}" + (f": {said}" if said else "")
    if action.startswith("sla."):
        state = action[4:].replace("_", " ")
        due = a.get("sla_due_at")
        return f"SLA {state}" + (f" (due {_value('sla_due_at', due, users)})" if due else "") + \
            ("" if actor in ("worker", "system") else f" — {who}")
    if said:
        return f"{said} by {who}"
    return f"{action.replace('.', ' ').replace('_', ' ')} by {who}"


def mentions_html(text: str) -> Markup:
    """Escaped text with @mentions wrapped in a span (the only markup added)."""
    out, last = [], 0
    for m in MENTION.finditer(text):
        out.append(escape(text[last:m.start()]))
        out.append(Markup('<span class="mention">@{}</span>').format(m.group(1)))
        last = m.end()
    out.append(escape(text[last:]))
    return Markup("").join(out)


@dataclass
class Item:
    kind: str  # inbound | outbound | note | ai | request
    at: datetime
    author: str
    body: str
    subject: str | None = None
    status: str | None = None
    attachments: list[Attachment] = field(default_factory=list)
    decision: AIDecision | None = None
    message: Message | None = None
    ident: str = ""


def conversation(session: Session, case: Case, messages: list[Message], atts: dict[int, list[Attachment]],
                 notes: list[Note], decisions: list[AIDecision]) -> list[Item]:
    items = [Item("request", case.created_at, "customer", case.description, subject=case.subject, ident="request")] \
        if case.description else []
    for m in messages:
        direction = "outbound" if m.direction == "outbound" else "inbound"
        items.append(Item(direction, m.created_at, m.sender or ("agent" if direction == "outbound" else "customer"),
                          m.body_text or "", subject=m.subject, status=m.status if direction == "outbound" else None,
                          attachments=atts.get(m.id or -1, []),
                          message=m, ident=f"message-{m.id}"))
    for n in notes:
        items.append(Item("note", n.created_at, actor_words(n.author), n.body, ident=f"note-{n.id}"))
    for d in decisions:
        if d.outcome != "suggested":
            continue
        text = d.proposed.get("text") if isinstance(d.proposed, dict) else None
        body = str(text) if text else ", ".join(f"{k}={v}" for k, v in (d.proposed or {}).items())
        items.append(Item("ai", d.created_at, f"AI ({d.model_version or d.provider or 'model'})", body,
                          decision=d, ident=f"ai-{d.id}"))
    order = {"request": 0, "inbound": 1, "outbound": 2, "note": 3, "ai": 4}
    items.sort(key=lambda i: (i.at, order[i.kind]))
    return items
