"""Outbound email: acknowledgements and agent replies, sent through the configured SMTP relay by a job.

The full RFC 5322 message (with its Message-ID, In-Reply-To and References) is built when it is queued and stored
as an outbound Message row, so the job sends exactly what is stored, a retry reuses the same Message-ID, and the
customer's reply threads back to the case. The `mail.send` handler skips messages already marked sent.

Messages are built with the email package's SMTP policy (CRLF, lines within 998 octets; a bare-LF message was one
over-long line to a strict relay). An internationalised recipient address needs SMTPUTF8: used when the relay
offers it, otherwise the message fails permanently with that reason. Permanent failures (5xx, encoding) and
temporary ones that outlast the job's attempts mark the message `failed` with the reason (case page, dashboard)
instead of retrying for ever. With no relay configured (demo mode) a message is delivered to the local outbox
(status `outbox`, readable at /admin/outbox).
"""

from __future__ import annotations

import email
import email.policy
import re
import smtplib
import uuid
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from casemgr.audit import service as audit
from casemgr.cases.change import Change, change
from casemgr.cases.models import Case, Party
from casemgr.clock import now
from casemgr.config import get_settings
from casemgr.db import draft, row_of
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


MAX_REFERENCES_CHARS = 900  # References stays one header line of at most 998 octets (see _build)


def _references(parent: Message) -> str:
    """The parent's References plus its Message-ID: the first and the latest ids while they fit one line."""
    refs = [r for r in (parent.references or "").split() if r] + [parent.message_id or ""]
    kept: list[str] = []
    for ref in reversed(refs):
        if ref and sum(len(r) + 1 for r in kept) + len(ref) <= MAX_REFERENCES_CHARS:
            kept.insert(0, ref)
    if refs[0] not in kept and len(refs[0]) + sum(len(r) + 1 for r in kept[1:]) <= MAX_REFERENCES_CHARS:
        kept = [refs[0], *kept[1:]]  # RFC 5322 3.6.4: keep the thread's first id
    return " ".join(kept)


def _policy(to: str) -> email.policy.EmailPolicy:
    # CRLF line ends. Lines up to 998 octets: the email package folds long Message-ID lists into encoded words,
    # which breaks threading, so headers stay unfolded within the RFC 5322 limit and long body lines are
    # quoted-printable. An internationalised address is only expressible as UTF-8 (RFC 6532, SMTPUTF8).
    base = email.policy.SMTP if to.isascii() else email.policy.SMTPUTF8
    return base.clone(max_line_length=998)


def _build(case: Case, to: str, subject: str, body: str, parent: Message | None) -> tuple[EmailMessage, str]:
    settings = get_settings()
    message_id = f"<casemgr.{case.reference}.{uuid.uuid4().hex}@{_domain()}>"
    em = EmailMessage(policy=_policy(to))
    em["From"] = formataddr(("Customer care", settings.mail_from))
    em["To"] = to
    em["Subject"] = reference_subject(case, subject)
    em["Date"] = format_datetime(now())
    em["Message-ID"] = message_id
    em["Auto-Submitted"] = "auto-generated" if parent is None or parent.direction == "inbound" else "no"
    em["X-Casemgr-Case"] = case.reference or str(case.id)
    if parent is not None and parent.message_id:
        em["In-Reply-To"] = parent.message_id
        em["References"] = _references(parent)
    text = clean_text(body)
    short = all(len(line) <= 900 for line in text.split("\n"))
    em.set_content(text, cte="7bit" if text.isascii() and short else "quoted-printable")
    return em, message_id


def _queue(session: Session, case: Case, to: str, subject: str, body: str, parent: Message | None, *, kind: str,
           actor: str, ch: Change | None = None) -> Message:
    """Store the outbound message and its send job; the audit event is `ch`'s when it runs in a case change."""
    to = clean_header(to, 320)
    if "@" not in to or " " in to:
        raise ValidationFailed(f"cannot send to {to!r}: not an email address", field="to")
    try:
        em, message_id = _build(case, to, subject, body, parent)
        if kind == "ack":
            em.replace_header("Auto-Submitted", "auto-replied")
        raw = em.as_bytes()
    except (ValueError, UnicodeError, TypeError, IndexError) as exc:
        # Text that cannot become a header (issue 18): an agent hears why; an acknowledgement must never turn
        # the customer's message into a storage failure (SMTP 451 for ever), so it is recorded as failed.
        if kind != "ack":
            raise ValidationFailed(f"this message cannot be built for sending: {exc}", field="body") from exc
        return _failed_unbuilt(session, case, to, subject, body, kind=kind, actor=actor, reason=str(exc))
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


def _failed_unbuilt(session: Session, case: Case, to: str, subject: str, body: str, *, kind: str, actor: str,
                    reason: str) -> Message:
    msg = Message(case_id=case.id, direction="outbound", channel="email", sender=get_settings().mail_from,
                  recipients=[to], subject=clean_header(subject, 998), body_text=clean_text(body), raw=None,
                  status="failed", meta={"kind": kind, "actor": actor,
                                         "reason": f"could not build the message: {reason}"[:500]})
    session.add(msg)
    session.flush()
    audit.record(session, actor=actor, action="message.failed", case_id=case.id, entity=f"message:{msg.id}",
                 after={"to": to, "status": "failed", "reason": msg.meta["reason"]})
    return msg


def _ack_allowed(session: Session, inbound: Message) -> bool:
    """At most ack_per_recipient_per_hour acknowledgements to one address (counted in the database): the public
    form and spoofed mail must not turn the acknowledgement into a way to mail anyone, again and again."""
    from casemgr.ratelimit import service as ratelimit

    to = (inbound.sender or "").strip().lower()
    if ratelimit.allow(f"ack:{to}", get_settings().ack_per_recipient_per_hour, 3600, session=session):
        return True
    _ack_refused(session, inbound, to)
    return False


def acks_allowed(session: Session, inbounds: list[Any]) -> list[bool]:
    """_ack_allowed for a batch of inbound messages, in order, counted with one upsert (casemgr.intake.batch)."""
    from casemgr.ratelimit import service as ratelimit

    tos = [(m.sender or "").strip().lower() for m in inbounds]
    allowed = ratelimit.allow_many([f"ack:{to}" for to in tos], get_settings().ack_per_recipient_per_hour, 3600,
                                   session=session)
    for inbound, to, ok in zip(inbounds, tos, allowed, strict=True):
        if not ok:
            _ack_refused(session, inbound, to)
    return allowed


def _ack_refused(session: Session, inbound: Any, to: str) -> None:
    from casemgr.security import service as security
    from casemgr.security.enums import SecurityEventKind

    source = str((inbound.meta or {}).get("source") or inbound.channel or "")
    client = source.split(":", 1)[1] if source.startswith("form:") else (inbound.channel or "mail")
    security.record(session, SecurityEventKind.RATE_LIMITED, client=client, username=to, path="acknowledgement",
                    detail="acknowledgements per recipient address")


def queue_acknowledgement(session: Session, case: Case, inbound: Message) -> Message | None:
    if not inbound.sender or not _ack_allowed(session, inbound):
        return None
    return _queue(session, case, inbound.sender, _ack_subject(case), _ack_body(case), inbound, kind="ack",
                  actor="system:intake")


def _ack_subject(case: Any) -> str:
    # The subject carries the case reference only, never the sender's free text (issue 18).
    return f"We received your message: case {case.reference}"


def _ack_body(case: Any) -> str:
    return (
        f"Thank you for contacting us. We have received your message and opened case {case.reference}.\n\n"
        f"Please keep {case.reference} in the subject line if you write to us again about this matter; "
        "replying to this email does that for you.\n"
    )


# A stand-in for the case reference while an acknowledgement is built outside the write lock (the reference
# follows from the case id, which the group commit reserves inside it). ASCII, no space, longer than any
# reference: the built message keeps it verbatim (7bit body, unfolded headers) and PlannedAck.row swaps it.
REFERENCE_STAND_IN = "CASEMGR0REFERENCE0STAND0IN"


@dataclass
class PlannedAck:
    """An acknowledgement built before its case has a reference (casemgr.intake.batch stores it)."""

    to: str
    subject: str
    message_id: str
    in_reply_to: str | None
    references: str | None
    body_text: str
    raw: bytes

    def row(self, case: Any, pk: int) -> dict[str, Any]:
        """The outbound message row for `case` (now with its reference), as _queue would have stored it."""
        ref = str(case.reference)

        def put(text: str) -> str:
            return text.replace(REFERENCE_STAND_IN, ref)

        return row_of(draft(
            Message, id=pk, case_id=case.id, direction="outbound", channel="email", message_id=put(self.message_id),
            in_reply_to=self.in_reply_to, references=self.references, sender=get_settings().mail_from,
            recipients=[self.to], subject=put(self.subject), body_text=put(self.body_text),
            raw=self.raw.replace(REFERENCE_STAND_IN.encode(), ref.encode()), status="queued",
            meta={"kind": "ack", "actor": "system:intake"}))


# What an acknowledgement template may be filled with: values the email package keeps verbatim in a header
# (plain ASCII addresses and message ids, nothing to fold, quote or encode). Anything else is built in full.
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9.-]{1,190}")
_PLAIN_MESSAGE_ID = re.compile(r"<[A-Za-z0-9!#$%&'*+/=?^_`{|}~.@-]{1,250}>")
_TO_STAND_IN = "casemgr0to0stand0in@casemgr0to0stand0in.invalid"
_PARENT_STAND_IN = "<casemgr0parent0stand0in@casemgr0parent0stand0in.invalid>"
_ack_templates: dict[tuple[str, str], tuple[PlannedAck, str, str]] = {}


def _ack_template() -> tuple[PlannedAck, str, str]:
    """The acknowledgement built once with stand-ins for recipient, parent Message-ID and reference (building a
    message with the email package costs ~2 ms; filling the template costs microseconds): (ack, its uuid, its
    Date value)."""
    key = (get_settings().mail_from, _domain())
    hit = _ack_templates.get(key)
    if hit is None:
        parent = SimpleNamespace(message_id=_PARENT_STAND_IN, references=None, direction="inbound")
        ack = _build_ack(_TO_STAND_IN, parent)
        if ack is None:
            raise RuntimeError("the acknowledgement template does not build")
        msg = email.message_from_bytes(ack.raw)
        found = re.search(r"\.([0-9a-f]{32})@", ack.message_id)
        if found is None:
            raise RuntimeError(f"unexpected acknowledgement Message-ID {ack.message_id}")
        uid = found.group(1)
        hit = _ack_templates[key] = (ack, uid, str(msg["Date"]))
    return hit


def _build_ack(to: str, inbound: Any) -> PlannedAck | None:
    stand_in = SimpleNamespace(id=0, reference=REFERENCE_STAND_IN)
    body = _ack_body(stand_in)
    try:
        em, message_id = _build(stand_in, to, _ack_subject(stand_in), body, inbound)  # type: ignore[arg-type]
        em.replace_header("Auto-Submitted", "auto-replied")
        raw = em.as_bytes()
    except (ValueError, UnicodeError, TypeError, IndexError):
        return None
    # Subject, X-Casemgr-Case, Message-ID and the body must hold it verbatim (not folded or encoded).
    if raw.count(REFERENCE_STAND_IN.encode()) != str(em["Subject"]).count(REFERENCE_STAND_IN) + body.count(
            REFERENCE_STAND_IN) + 2:
        return None
    return PlannedAck(to=to, subject=str(em["Subject"]), message_id=message_id, in_reply_to=em.get("In-Reply-To"),
                      references=em.get("References"), body_text=clean_text(body), raw=raw)


def plan_acknowledgement(inbound: Any) -> PlannedAck | None:
    """queue_acknowledgement's message, built without a database (the rate limit is checked when it is stored);
    None when only the ordinary path can handle it (no sender, an address or text that will not build)."""
    if not inbound.sender:
        return None
    to = clean_header(inbound.sender, 320)
    if "@" not in to or " " in to or not to.isascii():
        return None
    parent_id = inbound.message_id or ""
    if not (_PLAIN_ADDRESS.fullmatch(to) and _PLAIN_MESSAGE_ID.fullmatch(parent_id) and not inbound.references):
        return _build_ack(to, inbound)
    template, uid, date = _ack_template()
    fresh_uid, fresh_date = uuid.uuid4().hex, format_datetime(now())

    def fill(text: str) -> str:
        return (text.replace(_TO_STAND_IN, to).replace(_PARENT_STAND_IN, parent_id).replace(uid, fresh_uid)
                .replace(date, fresh_date))

    raw = (template.raw.replace(_TO_STAND_IN.encode(), to.encode())
           .replace(_PARENT_STAND_IN.encode(), parent_id.encode()).replace(uid.encode(), fresh_uid.encode())
           .replace(date.encode(), fresh_date.encode()))
    return PlannedAck(to=to, subject=template.subject, message_id=fill(template.message_id),
                      in_reply_to=fill(template.in_reply_to or "") or None,
                      references=fill(template.references or "") or None, body_text=template.body_text, raw=raw)


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


class PermanentFailure(Exception):
    """The relay or the message itself rules out delivery: retrying cannot help."""


@job_handler("mail.send")
def send_mail_job(session: Session, job: Job) -> None:
    """Send one queued outbound message; idempotent (a sent, failed or outboxed message is never sent again).

    Temporary trouble (relay down, 4xx) raises, so the job is retried with backoff; on its last attempt, and at
    once for a permanent failure, the message is marked `failed` with the reason.
    """
    msg = session.get(Message, int(job.payload.get("message_pk", 0)))
    if msg is None or msg.direction != "outbound" or msg.status in FINAL:
        return
    settings = get_settings()
    assert msg.raw is not None
    if not settings.smtp_relay_host:
        _finish(session, msg, "outbox", {"outbox_at": now().isoformat()}, action="message.outboxed")
        return
    relay = f"{settings.smtp_relay_host}:{settings.smtp_relay_port}"
    try:
        _relay(settings.smtp_relay_host, settings.smtp_relay_port, settings.mail_from, msg)
    except PermanentFailure as exc:
        _finish(session, msg, "failed", {"failed_at": now().isoformat(), "relay": relay, "reason": str(exc)[:500]},
                action="message.failed")
        return
    except (smtplib.SMTPException, OSError) as exc:
        if job.attempts >= job.max_attempts:
            reason = f"gave up after {job.attempts} attempts: {_describe(exc)}"
            _finish(session, msg, "failed", {"failed_at": now().isoformat(), "relay": relay, "reason": reason[:500]},
                    action="message.failed")
            return
        raise
    _finish(session, msg, "sent", {"sent_at": now().isoformat(), "relay": relay}, action=None)


FINAL = frozenset({"sent", "failed", "outbox"})


def _finish(session: Session, msg: Message, status: str, meta: dict[str, str], *, action: str | None) -> None:
    before = msg.status
    msg.status = status
    msg.meta = {**msg.meta, **meta}
    session.add(msg)
    if action is not None:
        audit.record(session, actor="worker", action=action, case_id=msg.case_id, entity=f"message:{msg.id}",
                     before={"status": before}, after={"status": status, **meta})


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {text}".strip()
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{rcpt}: {_describe(smtplib.SMTPResponseException(code, text))}"
                         for rcpt, (code, text) in exc.recipients.items())
    return f"{type(exc).__name__}: {exc}"


def _relay(host: str, port: int, mail_from: str, msg: Message) -> None:
    """Hand the stored message to the relay; PermanentFailure for what a retry cannot fix."""
    assert msg.raw is not None
    recipients = list(msg.recipients)
    international = not mail_from.isascii() or not all(r.isascii() for r in recipients)
    with smtplib.SMTP(host, port, timeout=30) as smtp:
        smtp.ehlo_or_helo_if_needed()
        options: list[str] = []
        if international:
            if not smtp.has_extn("smtputf8"):
                raise PermanentFailure(f"the relay {host}:{port} does not offer SMTPUTF8, which the internationalised "
                                       f"address {', '.join(recipients)} needs")
            options = ["SMTPUTF8", "BODY=8BITMIME"]
        try:
            smtp.sendmail(mail_from, recipients, msg.raw, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            if all(500 <= code < 600 for code, _ in exc.recipients.values()):
                raise PermanentFailure(f"refused by the relay: {_describe(exc)}") from exc
            raise
        except smtplib.SMTPResponseException as exc:
            if 500 <= exc.smtp_code < 600:
                raise PermanentFailure(f"refused by the relay: {_describe(exc)}") from exc
            raise
        except (UnicodeError, ValueError) as exc:
            raise PermanentFailure(f"the message cannot be encoded for this relay: {exc}") from exc
