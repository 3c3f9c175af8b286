"""Outbound email: acknowledgements and agent replies, sent through the configured SMTP relay by a job.

The full RFC 5322 message (with its Message-ID, In-Reply-To and References) is built when it is queued and stored
as an outbound Message row, so the job sends exactly what is stored, a retry reuses the same Message-ID, and the
customer's reply threads back to the case. The `mail.send` handler skips messages already marked sent.
"""

from __future__ import annotations

import email.policy
import smtplib
import uuid
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from sqlalchemy import select
from sqlmodel import Session

from casemgr.audit import service as audit
from casemgr.cases.change import Change, change
from casemgr.cases.models import Case, Party
from casemgr.clock import now
from casemgr.config import get_settings
from casemgr.errors import ValidationFailed
from casemgr.intake.models import Message
from casemgr.intake.parse import clean_header, clean_text
from casemgr.jobs.models import Job
from casemgr.jobs.service import enqueue, job_handler


def _domain() -> str:
    return get_settings().mail_from.rpartition("@")[2] or "casemgr.local"


def reference_subject(case: Case, subject: str) -> str:
    """The case reference in brackets, once; never a CR/LF (no header injection)."""
    subject = clean_header(subject, 400)
    tag = f"[{case.reference}]"
    return subject if tag in subject else f"{subject} {tag}".strip()


def _build(case: Case, to: str, subject: str, body: str, parent: Message | None) -> tuple[EmailMessage, str]:
    settings = get_settings()
    message_id = f"<casemgr.{case.reference}.{uuid.uuid4().hex}@{_domain()}>"
    # Long Message-IDs must not be folded into encoded words (that breaks threading): allow 998-char lines.
    em = EmailMessage(policy=email.policy.default.clone(max_line_length=998))
    em["From"] = formataddr(("Customer care", settings.mail_from))
    em["To"] = to
    em["Subject"] = reference_subject(case, subject)
    em["Date"] = format_datetime(now())
    em["Message-ID"] = message_id
    em["Auto-Submitted"] = "auto-generated" if parent is None or parent.direction == "inbound" else "no"
    em["X-Casemgr-Case"] = case.reference or str(case.id)
    if parent is not None and parent.message_id:
        em["In-Reply-To"] = parent.message_id
        refs = (parent.references or "").split() + [parent.message_id]
        em["References"] = " ".join(refs[-20:])
    em.set_content(clean_text(body))
    return em, message_id


def _queue(session: Session, case: Case, to: str, subject: str, body: str, parent: Message | None, *, kind: str,
           actor: str, ch: Change | None = None) -> Message:
    """Store the outbound message and its send job; the audit event is `ch`'s when it runs in a case change."""
    to = clean_header(to, 320)
    if "@" not in to or " " in to:
        raise ValidationFailed(f"cannot send to {to!r}: not an email address", field="to")
    em, message_id = _build(case, to, subject, body, parent)
    if kind == "ack":
        em.replace_header("Auto-Submitted", "auto-replied")
    raw = em.as_bytes()
    msg = Message(
        case_id=case.id, direction="outbound", channel="email", message_id=message_id,
        in_reply_to=em.get("In-Reply-To"), references=em.get("References"), sender=get_settings().mail_from,
        recipients=[to], subject=str(em["Subject"]), body_text=clean_text(body), raw=raw, status="queued",
        meta={"kind": kind, "actor": actor},
    )
    session.add(msg)
    session.flush()
    enqueue(session, "mail.send", {"message_pk": msg.id}, idempotency_key=f"mail.send:{msg.id}")
    after = {"to": to, "subject": msg.subject, "message_id": message_id}
    if ch is not None:
        ch.audit(action=f"message.{kind}_queued", entity=f"message:{msg.id}", after=after)
    else:
        audit.record(session, actor=actor, action=f"message.{kind}_queued", case_id=case.id,
                     entity=f"message:{msg.id}", after=after)
    return msg


def queue_acknowledgement(session: Session, case: Case, inbound: Message) -> Message | None:
    if not inbound.sender:
        return None
    body = (
        f"Thank you for contacting us. We have received your message and opened case {case.reference}.\n\n"
        f"Please keep {case.reference} in the subject line if you write to us again about this matter; "
        "replying to this email does that for you.\n"
    )
    return _queue(session, case, inbound.sender, f"Re: {inbound.subject or case.subject}", body, inbound,
                  kind="ack", actor="system:intake")


def send_reply(session: Session, case_id: int, body: str, actor: str, *, to: str | None = None,
               version: int | None = None) -> Message:
    """Queue an agent's reply to the customer on the case's thread: one case change (version claimed, 409 when
    `version` is stale; None for no check), audited as message.reply_queued."""
    if not body or not body.strip():
        raise ValidationFailed("the reply is empty", field="body")
    if len(body) > 100_000:
        raise ValidationFailed("the reply is longer than 100000 characters", field="body")
    with change(session, case_id, version, actor, "message.reply_queued") as ch:
        case = ch.case
        parent = session.execute(
            select(Message).where(Message.case_id == case_id).order_by(Message.id.desc()).limit(1)
        ).scalar_one_or_none()
        if to is None:
            # The customer who opened the case, not whoever wrote last: anyone can put [CMP-1] in a subject, and
            # an agent's reply must not leak the case to them.
            party = session.get(Party, case.party_id) if case.party_id is not None else None
            to = party.email if party and party.email else None
            if to is None:
                to = session.execute(
                    select(Message.sender).where(Message.case_id == case_id, Message.direction == "inbound",
                                                 Message.sender.is_not(None)).order_by(Message.id).limit(1)
                ).scalar_one_or_none()
        if not to:
            raise ValidationFailed("this case has no customer email address to reply to", field="to")
        return _queue(session, case, to, f"Re: {case.subject}", body, parent, kind="reply", actor=actor, ch=ch)


@job_handler("mail.send")
def send_mail_job(session: Session, job: Job) -> None:
    """Send one queued outbound message via the relay; idempotent (a sent message is never sent again)."""
    msg = session.get(Message, int(job.payload.get("message_pk", 0)))
    if msg is None or msg.direction != "outbound" or msg.status == "sent":
        return
    settings = get_settings()
    if not settings.smtp_relay_host:
        raise RuntimeError("no SMTP relay configured (set CASEMGR_SMTP_RELAY_HOST); the message stays queued")
    assert msg.raw is not None
    with smtplib.SMTP(settings.smtp_relay_host, settings.smtp_relay_port, timeout=30) as smtp:
        smtp.sendmail(settings.mail_from, list(msg.recipients), msg.raw)
    msg.status = "sent"
    msg.meta = {**msg.meta, "sent_at": now().isoformat(), "relay": f"{settings.smtp_relay_host}:"
                f"{settings.smtp_relay_port}"}
    session.add(msg)
