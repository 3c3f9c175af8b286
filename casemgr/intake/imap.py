"""Poll an IMAP mailbox: fetch UNSEEN messages without marking them, store durably, then mark \\Seen or move.

Because the flag is set only after the commit, a crash in between leaves the message unseen; the next run
fetches it again and intake recognises it by Message-ID (or its synthetic id) as a duplicate. So running the
poller twice, or concurrently with SMTP delivery of the same message, stores it once. Messages are fetched in
chunks and stored concurrently through the mail group commit (casemgr.intake.mailbatch), so a chunk shares a
few transactions (and fsyncs) instead of one per message; each is flagged after its own commit.
"""

from __future__ import annotations

import imaplib
import logging
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from casemgr.intake.service import IntakeResult, ingest_raw

log = logging.getLogger(__name__)


@dataclass
class PollResult:
    uid: str
    result: IntakeResult


def _quote(mailbox: str) -> str:
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _context(ca_file: str | None, insecure: bool) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def connect(host: str, port: int, *, tls: str = "ssl", ca_file: str | None = None,
            insecure: bool = False, timeout: float = 60.0) -> imaplib.IMAP4:
    if tls == "ssl":
        return imaplib.IMAP4_SSL(host, port, ssl_context=_context(ca_file, insecure), timeout=timeout)
    conn = imaplib.IMAP4(host, port, timeout=timeout)
    if tls == "starttls":
        conn.starttls(ssl_context=_context(ca_file, insecure))
    elif tls != "none":
        raise ValueError(f"unknown TLS mode {tls!r}")
    return conn


def _fetch_raw(conn: imaplib.IMAP4, uid: bytes) -> bytes | None:
    typ, data = conn.uid("FETCH", uid, "(BODY.PEEK[])")
    if typ != "OK":
        return None
    for item in data:
        if isinstance(item, tuple) and len(item) >= 2 and isinstance(item[1], bytes):
            return item[1]
    return None


CHUNK = 32  # messages fetched, then stored concurrently (one group commit), then flagged


def _mark_done(conn: imaplib.IMAP4, uid: bytes, move_to: str | None, can_move: bool) -> None:
    if move_to:
        if can_move:
            conn.uid("MOVE", uid, _quote(move_to))
        else:
            conn.uid("COPY", uid, _quote(move_to))
            conn.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted \Seen)")
            conn.expunge()
    else:
        conn.uid("STORE", uid, "+FLAGS.SILENT", r"(\Seen)")


def poll(
    host: str, port: int, user: str, password: str, *, tls: str = "ssl", mailbox: str = "INBOX",
    move_to: str | None = None, ca_file: str | None = None, insecure: bool = False, limit: int | None = None,
) -> list[PollResult]:
    """One pass over the mailbox's unseen messages. Raises if storage fails (the message stays unseen)."""
    conn = connect(host, port, tls=tls, ca_file=ca_file, insecure=insecure)
    results: list[PollResult] = []
    try:
        conn.login(user, password)
        typ, _ = conn.select(_quote(mailbox))
        if typ != "OK":
            raise RuntimeError(f"cannot open mailbox {mailbox!r}")
        typ, data = conn.uid("SEARCH", None, "UNSEEN")
        uids = data[0].split() if typ == "OK" and data and data[0] else []
        # Capabilities change after login (Dovecot adds MOVE), so ask again.
        typ, caps = conn.capability()
        can_move = typ == "OK" and bool(caps) and b"MOVE" in (caps[0] or b"").upper().split()
        todo = uids[:limit] if limit else uids
        for start in range(0, len(todo), CHUNK):
            fetched = []
            for uid in todo[start:start + CHUNK]:
                raw = _fetch_raw(conn, uid)
                if raw is None:
                    log.warning("could not fetch uid %s", uid)
                    continue
                fetched.append((uid, raw))
            # Stored together: the mail group commit puts concurrent deliveries in one transaction (issue 19).
            with ThreadPoolExecutor(max(1, min(len(fetched), CHUNK))) as pool:
                pending = [(uid, pool.submit(ingest_raw, raw, channel="email", grouped=True,
                                             source=f"imap:{user}@{host}/{mailbox}/{uid.decode()}"))
                           for uid, raw in fetched]
            failure: BaseException | None = None
            for uid, fut in pending:
                try:
                    result = fut.result()
                except Exception as exc:  # noqa: BLE001 - this message stays unseen; raised after the others
                    failure = failure or exc
                    continue
                # Only now, with the message committed, tell the server we have it.
                _mark_done(conn, uid, move_to, can_move)
                results.append(PollResult(uid.decode(), result))
            if failure is not None:
                raise failure
    finally:
        try:
            conn.logout()
        except Exception:  # noqa: BLE001
            pass
    return results
