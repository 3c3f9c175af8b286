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


def bad(why: str) -> BadRequest:
    return BadRequest(f"malformed cursor: {why}; use the next_cursor value of the previous page", field="cursor")


def load(cursor: str) -> object:
    """The JSON inside a base64url cursor (any cursor of this app's keyset pages)."""
    try:
        return json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError):
        raise bad("not base64url-encoded JSON") from None


def check_id(value: object) -> int:
    if type(value) is not int or not 0 < value <= MAX_ID:
        raise bad("the case id is not a positive integer")
    return value


def check_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise bad("the time is not a string")
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise bad("the time is not an ISO 8601 date-time") from None
    if when.tzinfo is None or when.utcoffset() is None:
        raise bad("the time has no time zone")
    return when


def decode(cursor: str) -> tuple[datetime | None, int]:
    value = load(cursor)
    if not (isinstance(value, list) and len(value) == 2):
        raise bad("not a [time, id] pair")
    due_s, case_id = value
    return (None if due_s is None else check_time(due_s)), check_id(case_id)
