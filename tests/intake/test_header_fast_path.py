"""parse.header() returns plain header values without the modern parser: the same text as through it."""

from __future__ import annotations

import email
import random

import pytest

from casemgr.intake import parse

pytestmark = pytest.mark.no_db

NAMES = ["Subject", "Message-ID", "In-Reply-To", "Auto-Submitted", "Date", "From"]
PRINTABLE = [chr(c) for c in range(0x20, 0x7F)]
SPECIAL = list(' ()<>@,;:\\".[]=?') * 3


def _value(rng: random.Random) -> str:
    if rng.random() < 0.5:  # message-id shaped
        atoms = "abcXYZ0189!#$%&'*+/=?^_`{|}~.-[]()<> \\\""
        return ("<" + "".join(rng.choice(atoms) for _ in range(rng.randint(0, 10))) + "@"
                + "".join(rng.choice(atoms) for _ in range(rng.randint(0, 10))) + ">")
    return "".join(rng.choice(PRINTABLE + SPECIAL) for _ in range(rng.randint(0, 40)))


def test_fast_path_equals_the_modern_parser_over_random_values() -> None:
    rng = random.Random(20261204)
    fast = 0
    for _ in range(3000):
        values = {name: _value(rng) for name in NAMES}
        head = "".join(f"{name}: {v}\r\n" for name, v in values.items())
        msg = email.message_from_bytes(f"{head}\r\nbody\r\n".encode(), policy=parse.POLICY)
        for name in NAMES:
            assert parse.header(msg, name) == parse.parsed_header(msg, name), (name, values[name])
            fast += name in ("Subject", "Message-ID") and parse.header(msg, name) == values[name]
    assert fast > 1000  # the fast path was taken, not just the fallback


@pytest.mark.parametrize("raw", [
    b"Subject: =?utf-8?q?caf=C3=A9?=\r\nMessage-ID: <a@b>\r\n\r\nx\r\n",
    b"Subject: plain\r\n  folded\r\nMessage-ID: <a [b]@c>\r\n\r\nx\r\n",
    b"Subject: caf\xc3\xa9 8-bit\r\nMessage-ID: <a@b>\r\nMessage-ID: <second@b>\r\n\r\nx\r\n",
    b"Message-ID: <a@b>\r\n\r\nx\r\n",
])
def test_encoded_folded_8bit_repeated_and_missing_headers_read_as_before(raw: bytes) -> None:
    msg = email.message_from_bytes(raw, policy=parse.POLICY)
    for name in NAMES:
        assert parse.header(msg, name) == parse.parsed_header(msg, name)
