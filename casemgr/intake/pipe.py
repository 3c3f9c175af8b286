"""`casemgr intake pipe`: one message on stdin, for an MTA's pipe transport (Postfix `pipe`, Exim).

An MTA starts one process per message, so start-up is the cost: `casemgr.cli` dispatches here before
importing typer or any other command, and the common case imports only the standard library, the message
parser and the database driver: the message is parsed as every intake path parses it, then written with its
worker job to the mail spool in one durable transaction (casemgr/intake/spool.py), no ORM, no models, no
migration check. The worker makes the case. Unusual messages (over the size limit, unparseable) take the full
`intake eml` path, which quarantines them before answering 65. The answer is a sysexits code the MTA understands:

- 0  (EX_OK)       stored durably (the spool; the worker makes the case, appends it, or finds a re-delivery);
- 65 (EX_DATAERR)  the message cannot be used; it is stored in the quarantine first, so nothing is lost;
- 75 (EX_TEMPFAIL) nothing was stored (database locked or unreachable); the MTA keeps it and retries.
"""

from __future__ import annotations

import sys
from typing import BinaryIO, TextIO

EX_OK = 0
EX_USAGE = 64
EX_DATAERR = 65
EX_TEMPFAIL = 75

USAGE = """usage: casemgr intake pipe [--source LABEL] [--recipient ADDRESS ...]

Read one RFC 5322 message from stdin and store it (exit 0), quarantine it (exit 65), or fail
temporarily so the MTA retries (exit 75). --recipient names the envelope recipient (Postfix: ${recipient})."""


def parse_args(argv: list[str]) -> tuple[str, list[str]] | None:
    """(source label, envelope recipients), or None for a usage error. Kept tiny: no typer on this path."""
    source, recipients = "pipe", []
    args = list(argv)
    while args:
        flag = args.pop(0)
        if flag in ("-h", "--help"):
            return None
        if flag in ("--source", "--recipient") and args:
            value = args.pop(0)
            if flag == "--source":
                source = value
            else:
                recipients.append(value)
            continue
        return None
    return source, recipients


def run(argv: list[str], stdin: BinaryIO | None = None, stderr: TextIO | None = None) -> int:
    """Store the message on stdin; returns the exit code. Never raises (an MTA needs a code, not a trace)."""
    err = stderr or sys.stderr
    parsed = parse_args(argv)
    if parsed is None:
        print(USAGE, file=err)
        return EX_USAGE
    source, recipients = parsed
    try:
        raw = (stdin or sys.stdin.buffer).read()
    except OSError as exc:
        print(f"intake pipe: cannot read stdin: {exc}", file=err)
        return EX_TEMPFAIL
    if not raw.strip():
        # Nothing to quarantine (and nothing an MTA should retry): an empty delivery is a data error.
        print("intake pipe: empty message on stdin", file=err)
        return EX_DATAERR
    try:
        if _spooled(raw, source, recipients):
            return EX_OK
        from casemgr.intake.service import ingest_raw

        # Over the size limit or unparseable: the `casemgr intake eml` path quarantines it durably first.
        result = ingest_raw(raw, channel="email", source=source, envelope_to=recipients or None)
    except Exception as exc:  # noqa: BLE001 - locked, unreachable, full disk: nothing stored, the MTA retries
        print(f"intake pipe: NOT STORED, retry later ({type(exc).__name__}: {str(exc)[:300]})", file=err)
        return EX_TEMPFAIL
    if result.status == "quarantined" or (result.status == "duplicate" and result.quarantine_id):
        print(f"intake pipe: quarantined #{result.quarantine_id}: {result.reason}", file=err)
        return EX_DATAERR
    return EX_OK


def _spooled(raw: bytes, source: str, recipients: list[str]) -> bool:
    """Store a usable message in the spool (True); False leaves it to the full path (it will be quarantined)."""
    from casemgr.intake import spool
    from casemgr.intake.parse import ParseError, parse_message

    where = spool.target()
    if len(raw) > where.max_message_bytes:
        return False
    try:
        parse_message(raw)
    except ParseError:
        return False
    except Exception:  # noqa: BLE001 - a parser bug: the full path records it in the quarantine
        return False
    spool.store(raw, source, recipients, where)
    return True


def main(argv: list[str]) -> None:
    sys.exit(run(argv))
