"""JSON columns through orjson (casemgr.jsontext): the values read back are the ones the stdlib stored, and an
audit event still hashes exactly what it stores, odd values included."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime
from decimal import Decimal
from enum import IntEnum, StrEnum

import numpy as np
import pytest
from sqlalchemy import select, text

from casemgr import jsontext
from casemgr.audit import service as audit
from casemgr.audit.models import AuditEvent
from casemgr.db import get_engine, read_session, write_session


class Colour(StrEnum):
    RED = "red"


class Level(IntEnum):
    HIGH = 3


ODD_VALUES = [
    {"a": 1, "b": [1.5, 2, None, True], "c": {"d": "é ✓ \u2028 \x00"}},
    {"num": np.float64(0.25), "i": np.int64(7)},
    {"big": 2**70, "neg": -(2**65)},
    {1: "int key", "s": Colour.RED, "lvl": Level.HIGH},
    {"t": (1, 2), "tiny": 1e-7, "huge": 1.5e300},
    [],
    "plain",
]


@pytest.mark.parametrize("value", ODD_VALUES)
def test_column_text_reads_back_as_the_stdlib_stored_it(value: object) -> None:
    try:
        expected = json.loads(json.dumps(value))
    except TypeError:
        # np.int64 is not an int to the stdlib: it refuses the value, so must the column encoder.
        with pytest.raises(TypeError):
            jsontext.dumps(value)
        return
    assert jsontext.loads(jsontext.dumps(value)) == expected


def test_column_encoder_is_as_strict_as_the_stdlib() -> None:
    # A datetime in a JSON column was a TypeError, not a silent string in orjson's own format.
    with pytest.raises(TypeError):
        jsontext.dumps({"at": datetime(2026, 12, 4, tzinfo=UTC)})
    with pytest.raises(TypeError):
        jsontext.dumps({"amount": Decimal("1.10")})


def test_nan_is_stored_as_null_and_old_nan_text_still_reads() -> None:
    assert jsontext.loads(jsontext.dumps({"x": math.nan})) == {"x": None}
    old = json.dumps({"x": math.inf, "y": math.nan})  # what the stdlib wrote before
    back = jsontext.loads(old)
    assert back["x"] == math.inf and math.isnan(back["y"])


CANONICAL_VALUES = [*ODD_VALUES[:3], ODD_VALUES[4], {"s": Colour.RED, "lvl": Level.HIGH},
                    {"at": datetime(2026, 12, 4, 9, 30, 1, 5, tzinfo=UTC), "d": Decimal("1.10"), "nan": math.nan,
                     "set": {1}}]


@pytest.mark.parametrize("value", CANONICAL_VALUES)
def test_canonical_is_what_the_stdlib_round_trip_gave(value: dict) -> None:  # type: ignore[type-arg]
    expected = json.loads(json.dumps(value, default=audit._json_default, sort_keys=True))
    got = audit.canonical(value)
    if "nan" in value:  # the one change on purpose: NaN is null in the column, so it is null in the hash too
        assert math.isnan(expected.pop("nan")) and got.pop("nan") is None
    assert got == expected
    assert list(got) == sorted(got)


def test_audit_events_with_odd_values_verify_after_a_round_trip_through_the_database() -> None:
    plain = {"at": datetime(2026, 12, 4, tzinfo=UTC), "nan": math.nan, "d": Decimal("2.50"), "text": "naïve ✓"}
    odd = {**plain, "num": np.float64(0.25), "inf": -math.inf}  # numpy's float: made plain by the stdlib first
    big = {"big": 2**70, "neg": -(2**65), "nan": math.nan}  # beyond orjson's ints: the stdlib writes it
    with write_session() as s:
        audit.record(s, actor="test", action="plain", before={"v": 1}, after=plain)
        audit.record(s, actor="test", action="odd", after=odd)
        audit.record(s, actor="test", action="big", after=big)
        audit.append_events(s, [audit.PendingEvent(actor="test", action="batch", after={"k": [odd, plain, big]})])
    with read_session() as s:
        assert audit.verify(s).ok
        stored = {e.action: e.after for e in s.execute(select(AuditEvent)).scalars()}
    assert stored["plain"] == {"at": "2026-12-04T00:00:00+00:00", "nan": None, "d": "2.50", "text": "naïve ✓"}
    assert stored["odd"] == {**stored["plain"], "num": 0.25, "inf": None}
    assert stored["big"] == {**big, "nan": None}


def test_rows_the_stdlib_wrote_still_read_and_verify() -> None:
    with write_session() as s:
        audit.record(s, actor="test", action="old", after={"x": 1.0, "y": "é"})
    # Rewrite the stored text as the stdlib encoder wrote it (spaces, \\u escapes): same value, same hash.
    with get_engine(write=True).begin() as c:
        c.execute(text("UPDATE audit_events SET after = :t WHERE action = 'old'"),
                  {"t": json.dumps({"y": "é", "x": 1.0})})
    with read_session() as s:
        assert audit.verify(s).ok
