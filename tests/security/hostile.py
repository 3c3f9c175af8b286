"""Builders for hostile inputs and the counters every hostile-input test reports (sent vs kept)."""

from __future__ import annotations

import base64
import io
import re
import zipfile
from email.utils import format_datetime

from sqlalchemy import func, select

from casemgr.clock import now
from casemgr.db import read_session
from casemgr.intake.models import Message, QuarantinedMessage


def kept() -> int:
    """Inbound messages stored on a case plus raw messages held in quarantine: nothing else counts as kept."""
    with read_session() as s:
        msgs = s.execute(select(func.count()).select_from(Message).where(Message.direction == "inbound")).scalar_one()
        held = s.execute(select(func.count()).select_from(QuarantinedMessage)).scalar_one()
    return int(msgs) + int(held)


def headers(message_id: str, subject: str = "Hostile", from_: str = "Ann <ann@example.org>",
            to: str = "complaints@example.com") -> str:
    return (f"From: {from_}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: {message_id}\r\n"
            f"Date: {format_datetime(now())}\r\nMIME-Version: 1.0\r\n")


def with_attachment(message_id: str, filename_param: str, data: bytes, ctype: str = "application/octet-stream",
                    subject: str = "See attachment") -> bytes:
    b64 = base64.encodebytes(data).decode().replace("\n", "\r\n")
    return (headers(message_id, subject) + 'Content-Type: multipart/mixed; boundary="BOUND"\r\n\r\n'
            "--BOUND\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nPlease see the attached file.\r\n"
            f"--BOUND\r\nContent-Type: {ctype}\r\nContent-Disposition: attachment; {filename_param}\r\n"
            f"Content-Transfer-Encoding: base64\r\n\r\n{b64}\r\n--BOUND--\r\n").encode()


def zip_bomb(inner_bytes: int = 50 * 1024 * 1024, nested: bool = False) -> bytes:
    """A small zip that expands to `inner_bytes` of zeros (optionally a zip of ten such zips)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("zeros.bin", b"\0" * inner_bytes)
    if not nested:
        return buf.getvalue()
    outer = io.BytesIO()
    with zipfile.ZipFile(outer, "w", zipfile.ZIP_DEFLATED) as zf:
        for i in range(10):
            zf.writestr(f"layer{i}.zip", buf.getvalue())
    return outer.getvalue()


def nested_mime(message_id: str, depth: int) -> bytes:
    parts = []
    for i in range(depth):
        parts.append(f'Content-Type: multipart/mixed; boundary="b{i}"\r\n\r\n--b{i}\r\n')
    body = "Content-Type: text/plain\r\n\r\ndeep inside\r\n"
    tail = "".join(f"\r\n--b{i}--\r\n" for i in reversed(range(depth)))
    return (headers(message_id, "nested") + "".join(parts) + body + tail).encode()


def many_parts(message_id: str, n: int) -> bytes:
    parts = "".join(f"--B\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(n))
    return (headers(message_id, "many parts") + 'Content-Type: multipart/mixed; boundary="B"\r\n\r\n' + parts
            + "--B--\r\n").encode()


SAFE_NAME = re.compile(r"^[^/\\\x00-\x1f]{1,255}$")
