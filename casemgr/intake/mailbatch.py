"""Raw mail (SMTP, IMAP) stored by group commit: one transaction, so one fsync, per batch of messages (issue 19).

The delivering thread does everything that needs no lock: the size check and parsing (charsets, senders, HTML),
the quarantine of what cannot be parsed, and, for a message that opens a new case (no thread headers, no case
reference in the subject, no attachments), the whole new case: threading decided from the headers, the case,
its rules routing and the acknowledgement mail built as drafts (casemgr.intake.batch.plan, the API's planner).
The writer thread (casemgr.groupcommit) then stores whatever has queued meanwhile in one write transaction:
planned new cases with one INSERT per table (casemgr.intake.batch.store_in), every other message (replies,
attachments, a Message-ID seen before) in its own savepoint through the ordinary intake.service._store
(threading, dedupe, case, acknowledgement job, audit), so a batched message is stored exactly as one stored
alone. A message whose savepoint fails is stored again alone after the batch, with its own outcome; a batch that
cannot commit is retried message by message. Nobody is answered (SMTP 250) before the commit that holds their
message returned, and with synchronous=FULL that commit is on disk.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, select

from casemgr.config import get_settings
from casemgr.db import table_of, write_session
from casemgr.errors import DomainError
from casemgr.groupcommit import GroupCommit
from casemgr.intake import service
from casemgr.intake.models import Message
from casemgr.intake.parse import ParsedMessage
from casemgr.intake.service import IntakeResult

log = logging.getLogger(__name__)


# Built once: SQLAlchemy computes a statement's cache key per statement object.
_MESSAGE_IDS = table_of(Message).c.message_id
_STORED_IDS = select(_MESSAGE_IDS).where(_MESSAGE_IDS.in_(bindparam("ids", expanding=True)))


@dataclass
class MailItem:
    pm: ParsedMessage
    raw: bytes
    kwargs: dict[str, Any] = field(default_factory=dict)
    planned: Any = None  # casemgr.intake.batch.PlannedIntake when the message opens a plain new case


def _store_one(item: MailItem) -> IntakeResult:
    return service._run_store(item.pm, item.raw, **item.kwargs)


def plan_new_case(pm: ParsedMessage, raw: bytes, kwargs: dict[str, Any]) -> Any:
    """The new case this message opens, planned with no database (None: the ordinary path decides).

    Only a message that cannot be a reply (no In-Reply-To, References or [REF-1] subject), has a sender and no
    attachments, and arrives by plain delivery (no quarantine reprocessing, no forced type) is planned here.
    """
    from casemgr.intake import batch, outbound

    settings = get_settings()
    if (settings.ai_inline or kwargs.get("force") or kwargs.get("quarantine_id") is not None
            or kwargs.get("case_type") or kwargs.get("fields") or kwargs.get("party")
            or not pm.sender or pm.is_bounce or pm.attachments or pm.in_reply_to or pm.references
            or service._SUBJECT_REF.search(pm.subject)):
        return None
    channel = kwargs.get("channel", "email")
    meta: dict[str, Any] = {"source": kwargs.get("source"), "notes": pm.notes,
                            "envelope_to": kwargs.get("envelope_to"), "attachments": 0}
    if pm.content_sha256:
        meta["content_sha256"] = pm.content_sha256
    if pm.hidden_text:
        meta["hidden_text"] = pm.hidden_text
        meta["flags"] = ["hidden-html-text"]
    ack = None
    if service._needs_ack(settings, channel, pm):
        ack = outbound.plan_acknowledgement(service.message_draft(pm, raw, channel, None, meta))
        if ack is None:
            return None
    try:
        data = service._case_create(pm, service.case_type_for(kwargs.get("envelope_to") or pm.recipients),
                                    kwargs.get("case_channel", "email"), None, None)
        return batch.plan(pm, raw, data, channel=channel, actor=kwargs.get("actor", service.ACTOR), meta=meta,
                          store_alone=lambda: service._run_store(pm, raw, **kwargs),
                          audit_extra=service._flag_fields(meta), ack=ack)
    except (DomainError, ValueError):
        return None  # the ordinary path quarantines it with the reason


def store_many(items: Sequence[MailItem]) -> list[IntakeResult | BaseException]:
    from casemgr.intake import batch

    results: list[IntakeResult | BaseException | None] = [None] * len(items)
    alone: list[int] = []
    token = service.inline_ai_allowed.set(len(items) == 1)  # a batch: the worker enriches, off the write lock
    try:
        with write_session() as session:
            planned = [i for i, it in enumerate(items) if it.planned is not None]
            if planned:
                # A Message-ID stored before (a redelivery, or a different message reusing it) or twice in this
                # batch: the ordinary path tells duplicate from reuse by content.
                stored = set(session.execute(_STORED_IDS, {"ids": [items[i].pm.message_id for i in planned]})
                             .scalars())
                bulk: list[int] = []
                for i in planned:
                    mid = items[i].pm.message_id
                    if mid not in stored:
                        stored.add(mid)
                        bulk.append(i)
                for i, res in zip(bulk, batch.store_in(session, [items[i].planned for i in bulk], unseen=True),
                                  strict=True):
                    results[i] = res
            for i, item in enumerate(items):
                if results[i] is not None:
                    continue
                try:
                    with session.begin_nested():
                        results[i] = service._store(session, item.pm, item.raw, **item.kwargs)
                except Exception as exc:  # noqa: BLE001 - stored alone below, with its own outcome or error
                    log.info("mail batch: message %s stored alone after %s", item.pm.message_id,
                             type(exc).__name__)
                    alone.append(i)
    finally:
        service.inline_ai_allowed.reset(token)
    for i in alone:
        # An error here is this message's alone (SMTP answers it 451); the others are committed already.
        try:
            results[i] = _store_one(items[i])
        except Exception as exc:  # noqa: BLE001 - handed to the waiting delivery by the group commit
            results[i] = exc
    return [r for r in results if r is not None]


# gather_s: how long the writer waits for messages whose SMTP sessions announced them (casemgr.groupcommit).
mail: GroupCommit[MailItem, IntakeResult] = GroupCommit("mail", store_many, _store_one,  # type: ignore[arg-type]
                                                        gather_s=0.02)


def submit(pm: ParsedMessage, raw: bytes, ticket: int | None = None, **kwargs: Any) -> IntakeResult:
    """Store one parsed message with the next batch; returns once that batch committed. `ticket`: the
    announcement (GroupCommit.expect) this message fulfils."""
    return mail.submit(MailItem(pm, raw, kwargs, plan_new_case(pm, raw, kwargs)), ticket)
