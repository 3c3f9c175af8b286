"""The opaque keyset cursor of case lists: base64url of JSON `[sla_due_at ISO or null, case id]`.

A cursor comes back from the client, so it is untrusted input: anything that is not exactly what
`encode` produces (bad base64 or JSON, another shape, a time without a time zone, an id outside the
database's integer range) is a 400 with a message, never a 500 from the query (issue 18).
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime

from casemgr.errors import BadRequest

MAX_ID = 2**63 - 1  # BIGINT; larger ids overflow the driver


def encode(due: datetime | None, case_id: int) -> str:
    raw = json.dumps([due.isoformat() if due else None, case_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _bad(why: str) -> BadRequest:
    return BadRequest(f"malformed cursor: {why}; use the next_cursor value of the previous page", field="cursor")


def decode(cursor: str) -> tuple[datetime | None, int]:
    try:
        raw = base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode("ascii"))
        value = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeError):
        raise _bad("not base64url-encoded JSON") from None
    if not (isinstance(value, list) and len(value) == 2):
        raise _bad("not a [time, id] pair")
    due_s, case_id = value
    if type(case_id) is not int or not 0 < case_id <= MAX_ID:
        raise _bad("the case id is not a positive integer")
    if due_s is None:
        return None, case_id
    if not isinstance(due_s, str):
        raise _bad("the time is not a string")
    try:
        due = datetime.fromisoformat(due_s)
    except ValueError:
        raise _bad("the time is not an ISO 8601 date-time") from None
    if due.tzinfo is None or due.utcoffset() is None:
        raise _bad("the time has no time zone")
    return due, case_id
