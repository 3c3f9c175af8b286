"""Normalised intake: every channel (SMTP, IMAP, .eml/mbox import, web form, API) ends here.

A message is stored durably in one transaction with what it causes: a new case (with routing, audit events, the
AI enrichment hand-off and the acknowledgement job) or an append to the case it replies to. What cannot be parsed
or routed is stored raw in the quarantine with the reason. Storage errors propagate, so callers can answer
"try again" (SMTP 451, HTTP 503) and nothing is half-written.
"""

from __future__ import annotations

import contextvars
import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from casemgr.audit import service as audit
from casemgr.cases.models import Case
from casemgr.cases.schemas import CaseCreate, PartyIn
from casemgr.casetypes.registry import get_registry
from casemgr.clock import now
from casemgr.config import get_settings
from casemgr.db import draft, read_session, write_session
from casemgr.errors import DomainError, NotFound, ValidationFailed
from casemgr.intake.models import Attachment, Message, QuarantinedMessage
from casemgr.intake.parse import (
    ParsedAttachment,
    ParsedMessage,
    ParseError,
    clean_header,
    clean_text,
    content_digest,
    parse_message,
)
from casemgr.intake.storage import store_blob
from casemgr.limits import (
    ACTOR_CHARS,
    ATTACHMENT_NAME_CHARS,
    AUDIT_LIST_ITEMS,
    AUDIT_REASON_CHARS,
    AUDIT_SUBJECT_CHARS,
    AUDIT_TEXT_CHARS,
    CASE_DESCRIPTION_CHARS,
    CASE_SUBJECT_CHARS,
    CHANNEL_CHARS,
    EMAIL_CHARS,
    HEADER_CHARS,
    PARTY_NAME_CHARS,
    SOURCE_CHARS,
)

if TYPE_CHECKING:
    from casemgr.intake.batch import PlannedIntake

log = logging.getLogger(__name__)

ACTOR = "system:intake"
_SUBJECT_REF = re.compile(r"\[([A-Z]{2,10})-(\d{1,12})\]")


@dataclass
class IntakeResult:
    status: str  # case | appended | duplicate | quarantined
    case_id: int | None = None
    reference: str | None = None
    reason: str | None = None
    message_pk: int | None = None
    quarantine_id: int | None = None
    acknowledgement: str | None = None  # the acknowledgement mail: "queued" (relay) or "outbox" (demo mode)

    def line(self, file: str | None = None) -> dict[str, Any]:
        """The stable `casemgr intake eml --json` record."""
        return {"file": file, "status": self.status, "case_id": self.case_id, "reason": self.reason}


@dataclass
class Submission:
    """A structured message from the web form or the JSON API."""

    channel: str  # form | api
    case_type: str
    subject: str
    body: str
    name: str | None = None
    email: str | None = None
    phone: str | None = None
    organisation: str | None = None
    external_id: str | None = None
    fields: dict[str, Any] = field(default_factory=dict)
    attachments: list[ParsedAttachment] = field(default_factory=list)
    source: str | None = None


# ---------------------------------------------------------------- routing helpers


def case_type_for(recipients: list[str]) -> str:
    """The case type whose intake_addresses (policies/case-types.yaml) match a recipient; else the first type."""
    return get_registry().for_recipients(recipients)


def find_thread(session: Session, pm: ParsedMessage) -> tuple[int | None, str | None]:
    """The case this message replies to: In-Reply-To/References first, then a [REF-123] in the subject."""
    ids = [i for i in [pm.in_reply_to, *reversed(pm.references)] if i]
    if ids:
        rows = session.execute(
            select(Message.message_id, Message.case_id).where(Message.message_id.in_(ids[:100]),
                                                              Message.case_id.is_not(None))
        ).all()
        by_id = {r[0]: r[1] for r in rows}
        for i in ids:
            if i in by_id:
                return by_id[i], "in-reply-to" if i == pm.in_reply_to else "references"
    for prefix, number in _SUBJECT_REF.findall(pm.subject):
        if prefix == "CASE":
            case = session.get(Case, int(number))
        else:
            case = session.execute(select(Case).where(Case.reference == f"{prefix}-{number}")).scalar_one_or_none()
        if case is not None:
            return case.id, "subject-reference"
    return None, None


# ---------------------------------------------------------------- storing


def _attachment_rows(session: Session, message_pk: int, attachments: list[ParsedAttachment]) -> None:
    for att in attachments:
        digest, rel = store_blob(att.data)
        session.add(Attachment(message_id=message_pk, filename=att.filename[:ATTACHMENT_NAME_CHARS],
                               content_type=att.content_type[:ATTACHMENT_NAME_CHARS], size=len(att.data),
                               sha256=digest,
                               storage_path=rel, inline=att.inline, kind=str(att.kind)))


def _quarantine(
    session: Session, raw: bytes | None, reason: str, *, channel: str, source: str | None,
    quarantine_id: int | None = None,
) -> IntakeResult:
    sha = hashlib.sha256(raw).hexdigest() if raw is not None else None
    reason = clean_text(reason)[:AUDIT_TEXT_CHARS]
    if quarantine_id is not None:
        q = session.get(QuarantinedMessage, quarantine_id)
        if q is None:
            raise NotFound(f"quarantined message {quarantine_id} not found")
        q.reason = reason
        session.add(q)
        return IntakeResult("quarantined", reason=reason, quarantine_id=q.id)
    if sha is not None:
        held = session.execute(
            select(QuarantinedMessage).where(QuarantinedMessage.raw_sha256 == sha,
                                             QuarantinedMessage.status.in_(("held", "discarded")))
            .order_by(QuarantinedMessage.id)
        ).scalars().first()
        if held is not None:  # the same bad input again: one record, and the answer names it
            return IntakeResult("duplicate", quarantine_id=held.id,
                                reason=f"already in quarantine #{held.id} ({held.status}): {held.reason}"[:AUDIT_TEXT_CHARS])
    q = QuarantinedMessage(channel=channel[:CHANNEL_CHARS], source=(source or "")[:SOURCE_CHARS] or None, reason=reason, raw=raw,
                           raw_sha256=sha)
    session.add(q)
    session.flush()
    audit.record(session, actor=ACTOR, action="intake.quarantined", entity=f"quarantine:{q.id}",
                 after={"channel": channel, "source": q.source, "reason": reason, "raw_sha256": sha})
    return IntakeResult("quarantined", reason=reason, quarantine_id=q.id)


def quarantine(raw: bytes | None, reason: str, *, channel: str, source: str | None = None) -> IntakeResult:
    with write_session() as session:
        return _quarantine(session, raw, reason, channel=channel, source=source)


def message_draft(pm: ParsedMessage, raw: bytes, channel: str, case_id: int | None,
                  meta: dict[str, Any]) -> SimpleNamespace:
    """The inbound message row (a casemgr.db.draft of Message)."""
    return draft(
        Message,
        case_id=case_id, direction="inbound", channel=channel[:CHANNEL_CHARS], message_id=pm.message_id,
        in_reply_to=pm.in_reply_to, references=" ".join(pm.references) or None, sender=pm.sender,
        recipients=pm.recipients, subject=pm.subject[:HEADER_CHARS], sent_at=pm.sent_at, body_text=pm.body_text,
        raw=raw, raw_sha256=hashlib.sha256(raw).hexdigest(), status="stored", meta=meta,
    )


# False while a group commit stores several messages in one transaction (casemgr.intake.mailbatch): inline AI
# there would hold the write lock for every message of the batch, as it would under concurrent writers.
inline_ai_allowed: contextvars.ContextVar[bool] = contextvars.ContextVar("inline_ai_allowed", default=True)


def _enrich(session: Session, case: Case) -> None:
    """Hand the case to AI enrichment; intake never waits on it or fails because of it."""
    from casemgr.jobs.service import enqueue

    if not get_settings().ai_inline or not inline_ai_allowed.get():
        # Queued for the worker (the served default): no inline work to roll back, so no savepoint (issue 10).
        enqueue(session, "ai.enrich", {"case_id": case.id, "attempt": 0}, idempotency_key=f"ai.enrich:{case.id}:0")
        return
    try:
        from casemgr.governance.enrich import enrich_inline_or_enqueue
    except ImportError:
        enqueue(session, "ai.enrich", {"case_id": case.id, "attempt": 0}, idempotency_key=f"ai.enrich:{case.id}:0")
        return
    try:
        with session.begin_nested():
            enrich_inline_or_enqueue(session, case)
    except Exception:  # noqa: BLE001 - AI trouble must not lose the message; the job retries it
        log.exception("AI enrichment hand-off failed for case %s; queued instead", case.id)
        enqueue(session, "ai.enrich", {"case_id": case.id, "attempt": 0}, idempotency_key=f"ai.enrich:{case.id}:0")


def _known_sender(session: Session, case: Case, sender: str | None) -> bool:
    if not sender:
        return False
    from casemgr.cases.models import Party

    party = session.get(Party, case.party_id) if case.party_id else None
    if party is not None and (party.email or "").lower() == sender.lower():
        return True
    row = session.execute(select(Message.id).where(Message.case_id == case.id, Message.sender == sender)
                          .limit(1)).first()
    return row is not None


def _case_create(pm: ParsedMessage, case_type: str, channel: str, fields: dict[str, Any] | None,
                 party: PartyIn | None) -> CaseCreate:
    return CaseCreate(
        case_type=case_type, subject=(pm.subject or "(no subject)")[: get_settings().max_subject_chars][:CASE_SUBJECT_CHARS],
        description=pm.body_text[:CASE_DESCRIPTION_CHARS], channel=channel, fields=fields or {},
        party=party or PartyIn(name=pm.sender_name[:PARTY_NAME_CHARS] if pm.sender_name else None,
                               email=pm.sender[:EMAIL_CHARS] if pm.sender else None),
    )


def _store(
    session: Session, pm: ParsedMessage, raw: bytes, *, channel: str, case_channel: str, actor: str,
    source: str | None, envelope_to: list[str] | None, case_type: str | None = None,
    fields: dict[str, Any] | None = None, party: PartyIn | None = None, force: bool = False,
    quarantine_id: int | None = None, quarantine_errors: bool = True,
) -> IntakeResult:
    meta: dict[str, Any] = {"source": source, "notes": pm.notes, "envelope_to": envelope_to,
                            "attachments": len(pm.attachments)}
    if pm.content_sha256:
        meta["content_sha256"] = pm.content_sha256
    existing = _earlier_delivery(session, pm, meta)
    if existing is not None:
        case = session.get(Case, existing[1]) if existing[1] else None
        return IntakeResult("duplicate", case_id=existing[1], reference=case.reference if case else None,
                            reason=f"message {pm.message_id} was already stored", message_pk=existing[0])
    if pm.hidden_text:
        meta["hidden_text"] = pm.hidden_text  # kept for the audit trail; never part of body_text (AI, rules)
        meta["flags"] = [*meta.get("flags", []), "hidden-html-text"]
    case_id, thread_by = find_thread(session, pm)
    if case_id is not None:
        from casemgr.intake import threadpolicy

        # Strangers may not join closed cases, and the public form never joins one (issue 18); sets known_sender.
        case_id = threadpolicy.decide(session, case_id, pm.sender, channel, thread_by, meta)
    if case_id is not None:
        from casemgr.cases.change import change

        # version None: mail threading onto a case never conflicts with an agent's edit, it only bumps it.
        with change(session, case_id, None, actor, "message.appended") as ch:
            case = ch.case
            meta["thread_by"] = thread_by
            msg = Message(**vars(message_draft(pm, raw, channel, case.id, meta)))
            session.add(msg)
            session.flush()
            assert msg.id is not None
            _attachment_rows(session, msg.id, pm.attachments)
            ch.audit(entity=f"message:{msg.id}",
                     after={"message_id": pm.message_id, "channel": channel, "sender": pm.sender,
                            "subject": pm.subject[:AUDIT_SUBJECT_CHARS], "thread_by": thread_by, "version": case.version,
                            "known_sender": meta["known_sender"], **_flag_fields(meta)})
        from casemgr.notifications.enums import NotificationKind
        from casemgr.notifications.service import notify_owner  # the owner hears of the reply (issue 20)

        notify_owner(session, case, NotificationKind.CUSTOMER_REPLY,
                     f"customer replied: {(pm.subject or '(no subject)')[:120]}", actor=actor)
        return IntakeResult("appended", case_id=case.id, reference=case.reference, message_pk=msg.id,
                            reason=_flag_reason(meta))
    if not force:
        problem = None
        if pm.is_bounce:
            problem = "delivery status notification (bounce) that matches no case; not a customer message"
        elif not pm.sender:
            problem = ("no usable sender address in From, Reply-To or Sender: nobody to answer, so no case was "
                       "opened")
        if problem:
            return _quarantine(session, raw, problem, channel=channel, source=source, quarantine_id=quarantine_id)
    ctype = case_type or case_type_for(envelope_to or pm.recipients)
    try:
        with session.begin_nested():
            data = _case_create(pm, ctype, case_channel, fields, party)
            from casemgr.cases.service import create_case

            case = create_case(session, data, actor=actor)
    except (DomainError, ValueError) as exc:
        if not quarantine_errors:
            raise
        message = exc.message if isinstance(exc, DomainError) else str(exc)
        return _quarantine(session, raw, f"could not open a case: {message}", channel=channel, source=source,
                           quarantine_id=quarantine_id)
    msg = Message(**vars(message_draft(pm, raw, channel, case.id, meta)))
    session.add(msg)
    session.flush()
    assert msg.id is not None
    _attachment_rows(session, msg.id, pm.attachments)
    audit.record(session, actor=actor, action="message.received", case_id=case.id, entity=f"message:{msg.id}",
                 after={"message_id": pm.message_id, "channel": channel, "sender": pm.sender,
                        "subject": pm.subject[:AUDIT_SUBJECT_CHARS],
                        "attachments": [a.filename for a in pm.attachments][:AUDIT_LIST_ITEMS],
                        **_flag_fields(meta)})
    if meta.get("linked_case"):
        _record_link(session, case, meta["linked_case"], actor)
    _enrich(session, case)
    ack_state = None
    if _needs_ack(get_settings(), channel, pm):
        from casemgr.intake.outbound import queue_acknowledgement

        ack = queue_acknowledgement(session, case, msg)
        if ack is not None and ack.status == "queued":
            ack_state = "queued" if get_settings().smtp_relay_host else "outbox"
    return IntakeResult("case", case_id=case.id, reference=case.reference, message_pk=msg.id,
                        reason=_flag_reason(meta), acknowledgement=ack_state)


def reused_message_id(message_id: str, digest: str) -> str:
    """The stored Message-ID of a different message that reused `message_id`: deterministic, so a redelivery of
    that second message is recognised as its duplicate."""
    return f"<reused.{digest[:24]}.{message_id.strip('<>')[:900]}>"


def _earlier_delivery(session: Session, pm: ParsedMessage, meta: dict[str, Any]) -> Any:
    """The stored row this message is a redelivery of (id, case_id), or None.

    Dedupe is on Message-ID *and* content: broken mailers, list software and forwards reuse Message-IDs, and a
    different message under a reused ID must be stored, not reported `duplicate` (issue 19). Such a message
    gets a derived Message-ID (reused_message_id) and the flag `message-id-reused`; it threads like any other.
    Trace headers (Received, ...) do not count as content: SMTP and IMAP copies of one message stay one.
    """
    row = session.execute(
        select(Message.id, Message.case_id, Message.raw, Message.meta).where(Message.message_id == pm.message_id)
    ).first()
    if row is None or pm.synthetic_id or pm.content_sha256 is None or row.raw is None:
        return row
    first_digest = (row.meta or {}).get("content_sha256") or content_digest(row.raw)
    if first_digest == pm.content_sha256:
        return row
    original = pm.message_id
    pm.message_id = reused_message_id(original, pm.content_sha256)
    again = session.execute(select(Message.id, Message.case_id).where(Message.message_id == pm.message_id)).first()
    meta["flags"] = [*meta.get("flags", []), "message-id-reused"]
    meta["message_id_reused"] = {"message_id": original, "first_message": row.id, "first_case": row.case_id}
    return again


def _flag_fields(meta: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if meta.get("flags"):
        out["flags"] = meta["flags"]
    if meta.get("message_id_reused"):
        out["message_id_reused"] = meta["message_id_reused"]
    if meta.get("hidden_text"):
        out["hidden_text"] = meta["hidden_text"][:AUDIT_TEXT_CHARS]
    return out


def _flag_reason(meta: dict[str, Any]) -> str | None:
    reused = meta.get("message_id_reused")
    if not reused:
        return None
    return (f"Message-ID {reused['message_id']} was already used by a different message (message "
            f"{reused['first_message']}); stored as its own message and flagged message-id-reused")


def _record_link(session: Session, case: Case, link: dict[str, Any], actor: str) -> None:
    """A new case opened instead of joining the case its message named: both cases' timelines say so."""
    audit.record(session, actor=actor, action="case.linked", case_id=case.id, entity=f"case:{link['id']}",
                 after={"linked_case": link["reference"], "reason": link["reason"]})
    audit.record(session, actor=actor, action="case.linked_from", case_id=link["id"], entity=f"case:{case.id}",
                 after={"new_case": case.reference, "reason": link["reason"]})


def _run_store(pm: ParsedMessage, raw: bytes, **kwargs: Any) -> IntakeResult:
    try:
        with write_session() as session:
            return _store(session, pm, raw, **kwargs)
    except IntegrityError:
        # Another delivery of the same Message-ID committed first (SMTP and IMAP at once): it is a duplicate.
        with read_session() as session:
            row = session.execute(select(Message.id, Message.case_id)
                                  .where(Message.message_id == pm.message_id)).first()
        if row is None:
            raise
        return IntakeResult("duplicate", case_id=row[1], reason=f"message {pm.message_id} was already stored",
                            message_pk=row[0])


def ingest_raw(
    raw: bytes, *, channel: str = "email", source: str | None = None, envelope_to: list[str] | None = None,
    actor: str = ACTOR, force: bool = False, quarantine_id: int | None = None, grouped: bool = False,
    ticket: int | None = None,
) -> IntakeResult:
    """Store one raw RFC 5322 message; returns what happened. Raises only on storage failure.

    `grouped` (SMTP, IMAP: many concurrent deliveries) stores it with others in one transaction
    (casemgr.intake.mailbatch) when settings.intake_group_commit is on; parsing happens here, outside the lock.
    `ticket`: the group commit's announcement of this message (the SMTP session's MAIL FROM), fulfilled when
    the message is queued; the caller withdraws it if the message took another path.
    """
    settings = get_settings()
    if len(raw) > settings.max_message_bytes:
        reason = (f"message is {len(raw)} bytes, over the limit of {settings.max_message_bytes} bytes; "
                  f"the raw source was not stored here (it stays at {source or 'the sender'})")
        with write_session() as session:
            return _quarantine(session, None, reason, channel=channel, source=source, quarantine_id=quarantine_id)
    try:
        pm = parse_message(raw)
    except ParseError as exc:
        with write_session() as session:
            return _quarantine(session, raw, exc.reason, channel=channel, source=source, quarantine_id=quarantine_id)
    except Exception as exc:  # noqa: BLE001 - a parser bug must not lose the message
        log.exception("parser failed on %s", source)
        with write_session() as session:
            return _quarantine(session, raw, f"parser error: {type(exc).__name__}: {exc}", channel=channel,
                               source=source, quarantine_id=quarantine_id)
    kwargs: dict[str, Any] = {"channel": channel, "case_channel": "email", "actor": actor, "source": source,
                              "envelope_to": envelope_to, "force": force, "quarantine_id": quarantine_id}
    if grouped and quarantine_id is None and settings.intake_group_commit:
        from casemgr.intake import mailbatch

        return mailbatch.submit(pm, raw, ticket, **kwargs)
    return _run_store(pm, raw, **kwargs)


def _prepare_submission(sub: Submission, *, actor: str) -> tuple[PlannedIntake | None, Callable[[], IntakeResult]]:
    """The submission as a normalised message: its group-commit plan if it opens a plain new case (else None),
    and the one-at-a-time path that stores it either way."""
    settings = get_settings()
    if sub.external_id:
        key = hashlib.sha256(f"{actor}\x00{sub.external_id}".encode()).hexdigest()[:40]
        message_id = f"<{sub.channel}.{key}@intake.casemgr>"
    else:
        message_id = f"<{sub.channel}.{uuid.uuid4().hex}@intake.casemgr>"
    email = sub.email.strip().lower() if sub.email else None
    pm = ParsedMessage(
        message_id=message_id, synthetic_id=True, in_reply_to=None, references=[], sender=email,
        sender_name=clean_header(sub.name, 300) if sub.name else None,
        recipients=[], subject=clean_header(sub.subject, settings.max_subject_chars),
        sent_at=now(), body_text=clean_text(sub.body)[:CASE_DESCRIPTION_CHARS], attachments=sub.attachments,
    )
    # The raw source of a structured submission is its JSON (attachments by hash; their bytes are stored files).
    # The fields as they are (dataclasses.asdict deep-copies every value: a sixth of planning an intake).
    record = {f.name: getattr(sub, f.name) for f in dataclass_fields(sub) if f.name != "attachments"}
    record["attachments"] = [{"filename": a.filename, "content_type": a.content_type, "size": len(a.data),
                              "sha256": a.sha256} for a in sub.attachments]
    raw = json.dumps(record, sort_keys=True, default=str).encode()
    party = PartyIn(name=pm.sender_name, email=email, phone=clean_header(sub.phone, 50) if sub.phone else None,
                    organisation=clean_header(sub.organisation, 300) if sub.organisation else None)
    get_registry().get(sub.case_type)  # any type in case-types.yaml; an unknown one is a 422 naming the known ones

    def store_alone() -> IntakeResult:
        return _run_store(pm, raw, channel=sub.channel, case_channel=sub.channel, actor=actor, source=sub.source,
                          envelope_to=None, case_type=sub.case_type, fields=sub.fields, party=party, force=True,
                          quarantine_errors=False)

    if not _batchable(sub, pm):
        return None, store_alone
    from casemgr.intake import batch

    data = _case_create(pm, sub.case_type, sub.channel, sub.fields, party)
    meta = {"source": sub.source, "notes": pm.notes, "envelope_to": None, "attachments": 0}
    return batch.plan(pm, raw, data, channel=sub.channel, actor=actor, meta=meta, store_alone=store_alone), store_alone


def ingest_submission(sub: Submission, *, actor: str) -> IntakeResult:
    """Store a form or API submission as the same normalised message record, and open its case."""
    planned, store_alone = _prepare_submission(sub, actor=actor)
    if planned is None:
        return store_alone()
    from casemgr.intake import batch

    return batch.new_cases.submit(planned)


async def ingest_submission_async(sub: Submission, *, actor: str) -> IntakeResult:
    """ingest_submission for async routes: a plain new case is planned here (CPU only) and waits for its group
    commit without holding a thread; anything else runs on the thread pool, one message at a time."""
    from fastapi.concurrency import run_in_threadpool

    if sub.attachments:  # hashing up to megabytes and writing files: not on the event loop
        return await run_in_threadpool(ingest_submission, sub, actor=actor)
    from casemgr.rules.service import get_service

    rules = get_service()
    if rules.refresh_due():  # planning evaluates the rules; their once-a-second version check reads the database
        await run_in_threadpool(rules.refresh)
    planned, store_alone = _prepare_submission(sub, actor=actor)
    if planned is None:
        return await run_in_threadpool(store_alone)
    from casemgr.intake import batch

    return await batch.new_cases.submit_async(planned)


def _batchable(sub: Submission, pm: ParsedMessage) -> bool:
    """Whether the submission opens a plain new case the group commit can store (casemgr.intake.batch)."""
    settings = get_settings()
    return (settings.intake_group_commit and not settings.ai_inline and not sub.attachments
            and not _needs_ack(settings, sub.channel, pm) and not _SUBJECT_REF.search(pm.subject))


def _needs_ack(settings: Any, channel: str, pm: ParsedMessage) -> bool:
    return bool(settings.intake_ack and channel in ("email", "form") and pm.sender and not pm.auto_submitted)


# ---------------------------------------------------------------- quarantine admin


def list_quarantine(session: Session, status: str | None = "held", limit: int = 100,
                    offset: int = 0) -> list[QuarantinedMessage]:
    stmt = select(QuarantinedMessage).order_by(QuarantinedMessage.id.desc()).limit(min(limit, 500)).offset(offset)
    if status:
        stmt = stmt.where(QuarantinedMessage.status == status)
    return list(session.execute(stmt).scalars())


def get_quarantined(session: Session, qid: int) -> QuarantinedMessage:
    q = session.get(QuarantinedMessage, qid)
    if q is None:
        raise NotFound(f"quarantined message {qid} not found")
    return q


def reprocess_quarantined(qid: int, actor: str, *, force: bool = False) -> IntakeResult:
    """Run intake again on the held raw bytes (after a fix). `force` opens a case even without a sender or
    for a bounce; unparseable input stays held with the new reason."""
    with read_session() as session:
        q = get_quarantined(session, qid)
        if q.status != "held":
            raise ValidationFailed(f"quarantined message {qid} is already {q.status}")
        if q.raw is None:
            raise ValidationFailed(f"quarantined message {qid} has no stored raw source to reprocess")
        raw, channel, source = q.raw, q.channel, q.source
    result = ingest_raw(raw, channel=channel, source=source, actor=actor, force=force, quarantine_id=qid)
    if result.status != "quarantined":
        with write_session() as session:
            q = get_quarantined(session, qid)
            q.status, q.case_id, q.resolved_at, q.resolved_by = "reprocessed", result.case_id, now(), actor[:ACTOR_CHARS]
            session.add(q)
            audit.record(session, actor=actor, action="quarantine.reprocessed", case_id=result.case_id,
                         entity=f"quarantine:{qid}", after={"status": result.status, "case_id": result.case_id})
    return result


def discard_quarantined(session: Session, qid: int, actor: str) -> QuarantinedMessage:
    """Mark as discarded (the raw bytes stay for the record; nothing is deleted)."""
    q = get_quarantined(session, qid)
    if q.status != "held":
        raise ValidationFailed(f"quarantined message {qid} is already {q.status}")
    q.status, q.resolved_at, q.resolved_by = "discarded", now(), actor[:ACTOR_CHARS]
    session.add(q)
    audit.record(session, actor=actor, action="quarantine.discarded", entity=f"quarantine:{qid}",
                 before={"status": "held"}, after={"status": "discarded", "reason": q.reason[:AUDIT_REASON_CHARS]})
    return q
