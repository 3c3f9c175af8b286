"""The JSON text of stored JSON columns, and the audit chain's canonical round trip, through orjson.

Why: the stdlib's encoder was a tenth of an AI enrichment batch's CPU (issue 23 profile of the drain: the
decision, call, case and audit rows' JSON columns, and `audit.service.canonical` dumping and reading each
event). orjson (Rust) does the same work several times faster.

The stdlib stays the reference for what a value becomes:
- a value orjson will not encode the way `json.dumps` would (a float subclass such as numpy's, an object the
  stdlib hands to `default`, an int beyond 64 bits) is first turned into plain JSON values by the stdlib, so it
  stores what it did before;
- text orjson will not read (the NaN and Infinity the stdlib writes, in rows stored before) is read by the stdlib.
The one difference on purpose: NaN and Infinity are written as null, as orjson does, which is valid JSON
(PostgreSQL's json type refused the stdlib's NaN). `canonical` uses the same encoder as the columns, so an
audit event hashes what it stores.

The bytes an audit hash covers (`audit.service.event_body`) and every other hash input stay the stdlib's: they
must not change for rows already written.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import datetime
from typing import Any

import orjson

# Datetimes and dataclasses go through `default` (or fail) as with the stdlib, instead of orjson's own format.
_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def dumps(value: Any) -> str:
    """A JSON column's text (SQLAlchemy's json_serializer): what `json.dumps(value)` stores, compact."""
    try:
        return orjson.dumps(value, option=_OPTIONS).decode("utf-8")
    except TypeError:  # orjson's JSONEncodeError: a type it leaves to `default`, of which there is none here
        plain = json.loads(json.dumps(value))  # the stdlib's value (or its own TypeError)
    try:
        return orjson.dumps(plain, option=_OPTIONS).decode("utf-8")  # its NaN as null, as above
    except TypeError:
        return json.dumps(_finite(plain))  # an int beyond 64 bits


def _finite(plain: Any) -> Any:
    """Plain JSON values with NaN and Infinity as null, as orjson writes them."""
    if isinstance(plain, float):
        return plain if math.isfinite(plain) else None
    if isinstance(plain, list):
        return [_finite(v) for v in plain]
    if isinstance(plain, dict):
        return {k: _finite(v) for k, v in plain.items()}
    return plain


def loads(text: str | bytes) -> Any:
    """A JSON column's value (SQLAlchemy's json_deserializer)."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)  # NaN / Infinity from rows the stdlib wrote


def _datetimes(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError  # anything else: the stdlib and the caller's `default` decide


def round_trip(value: Any, default: Callable[[Any], Any]) -> Any:
    """`value` as it reads back from a JSON column (keys sorted): `json.loads(json.dumps(value, default=default,
    sort_keys=True))` with the column encoder. `default` must turn a datetime into its isoformat()."""
    try:
        text = orjson.dumps(value, default=_datetimes, option=_OPTIONS | orjson.OPT_SORT_KEYS)
    except TypeError:
        return loads(dumps(json.loads(json.dumps(value, default=default, sort_keys=True))))
    return orjson.loads(text)
