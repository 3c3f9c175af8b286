"""The inbound SMTP server (aiosmtpd): 250 only after the message is committed, 451 when storage fails.

A 4xx makes the sending server keep the message and retry later, so a locked or unavailable database loses
nothing. Recipients outside settings.accepted_domains get 550; messages over settings.max_message_bytes get 552
from aiosmtpd's size limit before any byte is stored.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from casemgr.config import get_settings
from casemgr.intake.service import IntakeResult, ingest_raw

log = logging.getLogger(__name__)


class IntakeHandler:
    def __init__(self, accepted_domains: list[str] | None = None,
                 ingest: Callable[..., IntakeResult] = ingest_raw) -> None:
        domains = accepted_domains if accepted_domains is not None else get_settings().accepted_domains
        self.accepted = {d.lower().lstrip("@") for d in domains}
        self.ingest = ingest
        # Concurrent deliveries share one commit (and fsync) per batch; each is answered after that commit.
        self.grouped = ingest is ingest_raw
        self.ingest_kwargs = {"grouped": True} if self.grouped else {}

    # A session that sent MAIL FROM announces its message to the mail group commit, which then waits a moment
    # for it instead of committing the messages already there on their own (casemgr.groupcommit, issue 23).
    # The announcement ends when the message is queued, or with DATA, RSET, QUIT or the connection.

    def _announce(self, session: Any) -> None:
        if self.grouped and getattr(session, "casemgr_ticket", None) is None:
            from casemgr.intake import mailbatch

            session.casemgr_ticket = mailbatch.mail.expect()

    def _withdraw(self, session: Any) -> None:
        ticket = getattr(session, "casemgr_ticket", None)
        if ticket is not None:
            from casemgr.intake import mailbatch

            session.casemgr_ticket = None
            mailbatch.mail.release(ticket)

    async def handle_MAIL(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          mail_options: list[str]) -> str:
        envelope.mail_from = address  # what aiosmtpd does without this hook
        envelope.mail_options.extend(mail_options)
        self._announce(session)
        return "250 OK"

    async def handle_RSET(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self._withdraw(session)
        return "250 OK"

    async def handle_QUIT(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self._withdraw(session)
        return "221 Bye"

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        domain = address.rpartition("@")[2].lower().rstrip(">")
        if domain not in self.accepted:
            return "550 5.1.2 Recipient domain not accepted here"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8", "surrogateescape")
        peer = session.peer[0] if isinstance(session.peer, tuple) else str(session.peer)
        kwargs = dict(self.ingest_kwargs)
        if self.grouped:
            kwargs["ticket"] = getattr(session, "casemgr_ticket", None)
        call = functools.partial(self.ingest, raw, channel="email", source=f"smtp:{peer}",
                                 envelope_to=[a.lower() for a in envelope.rcpt_tos], **kwargs)
        try:
            # Storage is synchronous (SQLAlchemy); run it off the event loop so other sessions keep going.
            result = await asyncio.get_running_loop().run_in_executor(None, call)
        except Exception:  # noqa: BLE001 - anything unstored must be retried by the sender, never dropped
            log.exception("storing a message from %s failed; answering 451", peer)
            return "451 4.3.0 Temporary storage failure, please try again later"
        finally:
            self._withdraw(session)  # used when the message was queued; withdrawn if it took another path
        label = result.reference or (f"quarantine {result.quarantine_id}" if result.quarantine_id else result.status)
        return f"250 2.0.0 Message accepted ({result.status}: {label})"


class IntakeSMTP(SMTP):
    """aiosmtpd's server with lines as long as the message size limit allows.

    RFC 5321 caps a line at 1,000 octets, but real mailers send longer ones (HTML on one line, long base64
    without breaks), and aiosmtpd answered them with a permanent `500 Line too long`: the sender bounced
    mail we could have stored (issue 19). The message as a whole stays bounded by data_size_limit (552).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Read by SMTP.__init__ as the stream reader's buffer limit, and per DATA line.
        self.line_length_limit = max(SMTP.line_length_limit, int(kwargs.get("data_size_limit") or 0) + 2)
        super().__init__(*args, **kwargs)

    def connection_lost(self, error: Exception | None) -> None:
        handler = self.event_handler
        if isinstance(handler, IntakeHandler) and self.session is not None:
            handler._withdraw(self.session)  # a sender gone mid-transaction: nothing more to wait for
        super().connection_lost(error)


class IntakeController(Controller):
    def factory(self) -> SMTP:
        return IntakeSMTP(self.handler, **self.SMTP_kwargs)


def make_controller(host: str, port: int, handler: object | None = None) -> Controller:
    """The server `casemgr smtp` runs (`handler`: IntakeHandler by default; the bench's floor passes its own)."""
    settings = get_settings()
    return IntakeController(handler or IntakeHandler(), hostname=host, port=port,
                            data_size_limit=settings.max_message_bytes, enable_SMTPUTF8=True, decode_data=False,
                            ident="casemgr intake")


def serve(host: str, port: int) -> None:
    """Run until SIGINT/SIGTERM."""
    controller = make_controller(host, port)
    controller.start()
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    log.info("SMTP intake listening on %s:%s", host, port)
    try:
        stop.wait()
    finally:
        controller.stop()
