"""Raw mail (SMTP, IMAP) stored by group commit: one transaction, so one fsync, per batch of messages (issue 19).

The delivering thread does everything that needs no lock: the size check and parsing (charsets, senders, HTML),
and the quarantine of what cannot be parsed. The writer thread (casemgr.groupcommit) then stores whatever has
queued meanwhile in one write transaction, each message in its own savepoint through the ordinary
intake.service._store (threading, dedupe, case, acknowledgement job, audit), so a batched message is stored
exactly as one stored alone. A message whose savepoint fails is stored again alone after the batch, with its own
outcome; a batch that cannot commit is retried message by message. Nobody is answered (SMTP 250) before the
commit that holds their message returned, and with synchronous=FULL that commit is on disk.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from casemgr.db import write_session
from casemgr.groupcommit import GroupCommit
from casemgr.intake import service
from casemgr.intake.parse import ParsedMessage
from casemgr.intake.service import IntakeResult

log = logging.getLogger(__name__)


@dataclass
class MailItem:
    pm: ParsedMessage
    raw: bytes
    kwargs: dict[str, Any] = field(default_factory=dict)


def _store_one(item: MailItem) -> IntakeResult:
    return service._run_store(item.pm, item.raw, **item.kwargs)


def store_many(items: Sequence[MailItem]) -> list[IntakeResult | BaseException]:
    results: list[IntakeResult | BaseException | None] = [None] * len(items)
    alone: list[int] = []
    token = service.inline_ai_allowed.set(len(items) == 1)  # a batch: the worker enriches, off the write lock
    try:
        with write_session() as session:
            for i, item in enumerate(items):
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


mail: GroupCommit[MailItem, IntakeResult] = GroupCommit("mail", store_many, _store_one)  # type: ignore[arg-type]


def submit(pm: ParsedMessage, raw: bytes, **kwargs: Any) -> IntakeResult:
    """Store one parsed message with the next batch; returns once that batch committed."""
    return mail.submit(MailItem(pm, raw, kwargs))
