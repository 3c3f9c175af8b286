"""Parse raw RFC 5322 bytes into one normalised inbound message, defensively.

Python's `email` package with the modern policy does the work; any header it cannot parse is re-read from the
raw header text with the compat32 decoder. Charsets: the declared one if it decodes cleanly, else UTF-8, else
cp1252 (which covers undeclared 8-bit Western mail). Nothing here executes, renders or extracts attachments.
"""

from __future__ import annotations

import codecs
import email
import email.policy
import hashlib
import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header
from email.message import Message as EmailMessage
from email.utils import getaddresses, parseaddr, parsedate_to_datetime

from casemgr.intake.htmltext import html_to_text

MAX_MIME_DEPTH = 12
MAX_PARTS = 300
MAX_BODY_CHARS = 100_000
SYNTHETIC_DOMAIN = "synthetic.casemgr"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CHARSET_UPGRADE = {"gb2312": "gb18030", "gbk": "gb18030", "us-ascii": "cp1252", "ascii": "cp1252",
                    "iso-8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252", "ks_c_5601-1987": "cp949",
                    "euc-kr": "cp949", "big5": "big5hkscs", "shift_jis": "cp932", "windows-874": "cp874"}
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_HEADER_CTRL = re.compile(r"[\x00-\x1f\x7f]+")


class ParseError(Exception):
    """The input cannot become a message; `reason` says why (it goes to the quarantine record)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ParsedAttachment:
    filename: str
    content_type: str
    data: bytes
    inline: bool = False
    content_id: str | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


@dataclass
class ParsedMessage:
    message_id: str
    synthetic_id: bool
    in_reply_to: str | None
    references: list[str]
    sender: str | None
    sender_name: str | None
    recipients: list[str]
    subject: str
    sent_at: datetime | None
    body_text: str
    attachments: list[ParsedAttachment] = field(default_factory=list)
    auto_submitted: bool = False
    is_bounce: bool = False
    notes: list[str] = field(default_factory=list)
    # sha256 of the message minus trace headers (content_digest): tells a redelivery of the same message from a
    # different message that reuses its Message-ID. None for form/API submissions (their ids are ours).
    content_sha256: str | None = None
    # HTML text a reader cannot see (white on white, display:none, ...): kept for the audit, never in body_text.
    hidden_text: str = ""


# ---------------------------------------------------------------- text helpers


def decode_bytes(data: bytes, declared: str | None) -> str:
    """Decode a body or header: declared charset if it works, else UTF-8, else cp1252, else latin-1."""
    candidates: list[str] = []
    if declared:
        name = declared.strip().strip('"').lower()
        candidates.append(_CHARSET_UPGRADE.get(name, name))
    candidates += ["utf-8", "cp1252"]
    for cs in candidates:
        try:
            codecs.lookup(cs)
            return data.decode(cs)
        except (LookupError, UnicodeDecodeError, ValueError):
            continue
    return data.decode("latin-1")


def clean_text(value: str) -> str:
    """Drop control characters except newline and tab; normalise newlines."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    return _CTRL.sub("", value)


def clean_header(value: str, limit: int = 998) -> str:
    """One line, no control characters (no CR/LF header injection when we reuse it), bounded."""
    value = _HEADER_CTRL.sub(" ", value)
    value = re.sub(r"\s{2,}", " ", value).strip()
    return value[:limit]


def _unescape_surrogates(value: str) -> str:
    # BytesParser keeps undeclared 8-bit header bytes as surrogate escapes; decode them for real.
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        return decode_bytes(value.encode("utf-8", "surrogateescape"), None)
    return value


def _decode_words(raw: str) -> str:
    """compat32-style decoding of RFC 2047 encoded words, tolerant of bad charsets."""
    try:
        chunks = decode_header(raw)
    except Exception:  # noqa: BLE001
        return _unescape_surrogates(raw)
    out = []
    for chunk, cs in chunks:
        if isinstance(chunk, bytes):
            try:
                out.append(decode_bytes(chunk, cs))
            except Exception:  # noqa: BLE001
                out.append(chunk.decode("latin-1"))
        else:
            out.append(_unescape_surrogates(chunk))
    return "".join(out)


def header(msg: EmailMessage, name: str) -> str | None:
    """A header's decoded text, falling back to the raw header value when the modern parser fails."""
    try:
        value = msg.get(name)
        if value is None:
            return None
        text = str(value)
        if "=?" in text or "\ufffd" in text or any("\udc80" <= ch <= "\udcff" for ch in text):
            raise ValueError("undecoded words remain")
        return text
    except Exception:  # noqa: BLE001 - broken header: re-read it from the raw text
        for key, raw in msg.raw_items():
            if key.lower() == name.lower():
                return _decode_words(str(raw))
        return None


def header_all(msg: EmailMessage, name: str) -> list[str]:
    values = []
    for key, raw in msg.raw_items():
        if key.lower() == name.lower():
            values.append(_decode_words(str(raw)))
    return values


_MSGID = re.compile(r"<([^<>\s]{1,900})>")


def msgids(value: str | None) -> list[str]:
    if not value:
        return []
    found = [f"<{m}>" for m in _MSGID.findall(value)]
    if not found and value.strip() and " " not in value.strip() and "@" in value:
        found = [f"<{value.strip().strip('<>')}>"]
    return found


# Headers that relays, filters and mailbox servers add or rewrite on the way in: not part of a message's content.
_TRACE = re.compile(rb"^(received|received-spf|return-path|delivered-to|envelope-to|x-[^:]*|authentication-results"
                    rb"|dkim-signature|domainkey-signature|arc-[^:]*|status|content-length|lines):", re.I)


def content_digest(raw: bytes) -> str:
    """sha256 of the bytes minus trace headers (Received, Delivered-To, X-...) and line-ending differences: the
    same for the same message imported twice, or delivered by SMTP and fetched again by IMAP."""
    normal = raw.replace(b"\r\n", b"\n")
    head, sep, body = normal.partition(b"\n\n")
    kept: list[bytes] = []
    skipping = False
    for line in head.split(b"\n"):
        if line[:1] in (b" ", b"\t"):
            if not skipping:
                kept.append(line)
            continue
        skipping = bool(_TRACE.match(line))
        if not skipping:
            kept.append(line)
    return hashlib.sha256(b"\n".join(kept) + sep + body.rstrip(b"\n")).hexdigest()


def synthetic_message_id(raw: bytes) -> str:
    """A Message-ID for a message without one: its content digest, so a repeat is recognised as a duplicate."""
    return f"<{content_digest(raw)}@{SYNTHETIC_DOMAIN}>"


def sanitise_filename(name: str | None, content_type: str, index: int) -> str:
    """Keep only a safe base name: no directories, no control characters, no leading dots."""
    name = _unescape_surrogates(name or "")
    name = unicodedata.normalize("NFKC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = _HEADER_CTRL.sub("", name)
    name = re.sub(r"[^\w.\- ()+,@=\[\]]", "_", name).strip(" .")
    if not name:
        ext = mimetypes.guess_extension(content_type) or ".bin"
        name = f"attachment-{index}{ext}"
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[:180] + "." + ext[:15]) if dot and len(ext) <= 15 else name[:200]
    return name


def _addr(value: str) -> str | None:
    value = value.strip().strip("<>").strip()
    if not value or "@" not in value or len(value) > 320 or any(c.isspace() for c in value):
        return None
    return value.lower() if value.isascii() else value


# ---------------------------------------------------------------- parse


def _looks_like_rfc5322(raw: bytes) -> str | None:
    if not raw.strip():
        return "empty message"
    if raw.startswith(OLE_MAGIC):
        return "not an RFC 5322 message: this is an Outlook .msg (OLE2 compound) file; export it as .eml"
    head = raw[:4096]
    if b"\x00" in head.split(b"\n\n", 1)[0].split(b"\r\n\r\n", 1)[0]:
        return "not an RFC 5322 message: binary data (NUL bytes) in the header block"
    first = head.lstrip().split(b"\n", 1)[0]
    if not re.match(rb"^(From |[!-9;-~]+:)", first):
        return "not an RFC 5322 message: the first line is not a header"
    return None


def parse_message(raw: bytes) -> ParsedMessage:
    problem = _looks_like_rfc5322(raw)
    if problem:
        raise ParseError(problem)
    try:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
    except Exception as exc:  # noqa: BLE001
        try:
            msg = email.message_from_bytes(raw, policy=email.policy.compat32)
        except Exception:  # noqa: BLE001
            raise ParseError(f"unparseable message: {type(exc).__name__}: {exc}") from None
    notes = [type(d).__name__ for d in getattr(msg, "defects", [])][:20]

    known = {k.lower() for k in msg.keys()}
    if not known & {"from", "to", "subject", "date", "message-id", "received", "sender", "reply-to"}:
        raise ParseError("not an RFC 5322 message: no From, To, Subject, Date or Message-ID header")

    mid_list = msgids(header(msg, "Message-ID"))
    synthetic = not mid_list
    message_id = mid_list[0] if mid_list else synthetic_message_id(raw)
    in_reply = msgids(header(msg, "In-Reply-To"))
    refs = msgids(" ".join(header_all(msg, "References")))

    from_value = header(msg, "From") or header(msg, "Sender") or ""
    name, address = parseaddr(clean_header(from_value))
    sender = _addr(address)
    recipients: list[str] = []
    for hname in ("To", "Cc", "Delivered-To"):
        for value in header_all(msg, hname):
            for _, a in getaddresses([clean_header(value)]):
                addr = _addr(a)
                if addr and addr not in recipients:
                    recipients.append(addr)
    subject = clean_header(header(msg, "Subject") or "")
    sent_at = None
    date_value = header(msg, "Date")
    if date_value:
        try:
            sent_at = parsedate_to_datetime(clean_header(date_value))
            sent_at = sent_at.replace(tzinfo=UTC) if sent_at.tzinfo is None else sent_at.astimezone(UTC)
        except (TypeError, ValueError, IndexError, OverflowError):
            notes.append("unparseable Date header")

    auto = (header(msg, "Auto-Submitted") or "no").strip().lower()
    plains: list[str] = []
    htmls: list[str] = []
    attachments: list[ParsedAttachment] = []
    counter = {"parts": 0}
    _walk(msg, 0, plains, htmls, attachments, counter, notes)
    body = "\n\n".join(p for p in plains if p.strip())
    if not body.strip() and htmls:
        body = "\n\n".join(html_to_text(h) for h in htmls)
        notes.append("html-only body converted to text")
    body = clean_text(body).strip()
    if len(body) > MAX_BODY_CHARS:
        body = body[:MAX_BODY_CHARS]
        notes.append(f"body truncated to {MAX_BODY_CHARS} characters")
    ctype = msg.get_content_type()
    bounce = (ctype == "multipart/report" and "delivery-status" in (msg.get_param("report-type") or "")) or (
        sender is not None and sender.split("@")[0] in ("mailer-daemon", "postmaster") and not in_reply
    )
    return ParsedMessage(
        message_id=clean_header(message_id), synthetic_id=synthetic,
        in_reply_to=clean_header(in_reply[0]) if in_reply else None,
        references=[clean_header(r) for r in refs][:100],
        sender=sender, sender_name=clean_header(_unescape_surrogates(name), 300) or None,
        recipients=recipients[:100], subject=subject, sent_at=sent_at, body_text=body,
        attachments=attachments, auto_submitted=auto not in ("", "no"), is_bounce=bool(bounce), notes=notes,
        content_sha256=content_digest(raw),
    )


def _payload_bytes(part: EmailMessage) -> bytes:
    try:
        data = part.get_payload(decode=True)
    except Exception:  # noqa: BLE001
        data = None
    if data is None:
        payload = part.get_payload()
        if isinstance(payload, str):
            return payload.encode("utf-8", "surrogateescape")
        return b""
    return data if isinstance(data, bytes) else bytes(data)


def _walk(
    part: EmailMessage, depth: int, plains: list[str], htmls: list[str], attachments: list[ParsedAttachment],
    counter: dict[str, int], notes: list[str],
) -> None:
    if depth > MAX_MIME_DEPTH:
        raise ParseError(f"MIME nesting deeper than {MAX_MIME_DEPTH} levels (possible MIME bomb)")
    counter["parts"] += 1
    if counter["parts"] > MAX_PARTS:
        raise ParseError(f"more than {MAX_PARTS} MIME parts (possible MIME bomb)")
    ctype = part.get_content_type()
    if ctype.startswith("message/") and ctype != "message/delivery-status":
        # A forwarded or bounced message: keep it whole as an attachment, never parse it as ours.
        inner = part.get_payload()
        try:
            data = inner[0].as_bytes() if isinstance(inner, list) and inner else _payload_bytes(part)
        except Exception:  # noqa: BLE001
            data = str(part).encode("utf-8", "surrogateescape")
        attachments.append(ParsedAttachment(sanitise_filename(_filename(part), "message/rfc822",
                                                              len(attachments) + 1),
                                            "message/rfc822", data, False))
        return
    if part.is_multipart():
        payload = part.get_payload()
        for sub in payload if isinstance(payload, list) else []:
            _walk(sub, depth + 1, plains, htmls, attachments, counter, notes)
        epilogue = part.epilogue or ""
        boundary = part.get_boundary()
        if boundary and re.search(r"^--" + re.escape(boundary) + r"\s*$", epilogue, re.M):
            # Parts after the closing delimiter (seen in the wild when inner and outer boundaries clash).
            notes.append("recovered parts after the closing MIME boundary")
            _walk_recovered(epilogue, boundary, depth, plains, htmls, attachments, counter, notes)
        return
    if ctype.startswith("multipart/"):
        # The declared boundary is wrong: find the one actually used in the body and parse again.
        text = part.get_payload()
        text = text if isinstance(text, str) else ""
        m = re.search(r"^--([^\s]{1,200}?)\s*$", text, re.M)
        if m and depth < MAX_MIME_DEPTH and not counter.get("recovered"):
            counter["recovered"] = 1
            notes.append("recovered multipart with a wrong boundary")
            _walk_recovered(text, m.group(1), depth, plains, htmls, attachments, counter, notes)
        elif text.strip():
            (htmls if "<html" in text.lower() or "<body" in text.lower() else plains).append(
                _unescape_surrogates(text))
        return
    try:
        disposition = part.get_content_disposition()
    except Exception:  # noqa: BLE001
        disposition = None
    filename = _filename(part)
    data = _payload_bytes(part)
    is_body = disposition != "attachment" and not filename
    if ctype in ("text/plain", "message/delivery-status") and is_body:
        plains.append(decode_bytes(data, _charset(part)))
        return
    if ctype == "text/html" and is_body:
        htmls.append(decode_bytes(data, _charset(part)))
        return
    if ctype == "application/ms-tnef" and not filename:
        filename = "winmail.dat"
    if ctype == "application/ms-tnef" or (filename or "").lower() == "winmail.dat":
        _expand_tnef(data, plains, attachments, counter, notes)
    cid = part.get("Content-ID")
    attachments.append(ParsedAttachment(
        filename=sanitise_filename(filename, ctype, len(attachments) + 1),
        content_type=clean_header(ctype, 255), data=data,
        inline=disposition == "inline" or (cid is not None and disposition != "attachment"),
        content_id=clean_header(str(cid), 300) if cid else None,
    ))


def _expand_tnef(data: bytes, plains: list[str], attachments: list[ParsedAttachment], counter: dict[str, int],
                 notes: list[str]) -> None:
    """Outlook's winmail.dat: add the files inside as attachments (the original stays too) and use its plain
    body when the mail has none. Decoding only: nothing inside is opened or run."""
    try:
        from tnefparse import TNEF
    except ImportError:  # optional: without the library winmail.dat is kept as one attachment
        return
    try:
        tnef = TNEF(data, do_checksum=False)
        for att in tnef.attachments:
            counter["parts"] += 1
            if counter["parts"] > MAX_PARTS:
                raise ParseError(f"more than {MAX_PARTS} MIME parts (possible MIME bomb)")
            name = att.long_filename() or att.name
            ctype = mimetypes.guess_type(name or "")[0] or "application/octet-stream"
            attachments.append(ParsedAttachment(sanitise_filename(str(name), ctype, len(attachments) + 1), ctype,
                                                bytes(att.data or b"")))
        body = tnef.body
        if body and not any(p.strip() for p in plains):
            plains.append(decode_bytes(body.rstrip(b"\0"), None) if isinstance(body, bytes) else str(body))
        notes.append(f"winmail.dat decoded: {len(tnef.attachments)} file(s)")
    except ParseError:
        raise
    except Exception as exc:  # noqa: BLE001 - a broken TNEF blob stays as the opaque attachment it is
        notes.append(f"winmail.dat not decodable: {type(exc).__name__}")


def _walk_recovered(
    text: str, boundary: str, depth: int, plains: list[str], htmls: list[str],
    attachments: list[ParsedAttachment], counter: dict[str, int], notes: list[str],
) -> None:
    rebuilt = f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n{text}\n--{boundary}--\n'
    try:
        sub = email.message_from_bytes(rebuilt.encode("utf-8", "surrogateescape"), policy=email.policy.default)
    except Exception:  # noqa: BLE001
        plains.append(_unescape_surrogates(text))
        return
    if sub.is_multipart():
        for inner in sub.get_payload():
            _walk(inner, depth + 1, plains, htmls, attachments, counter, notes)


def _charset(part: EmailMessage) -> str | None:
    try:
        cs = part.get_param("charset")
    except Exception:  # noqa: BLE001
        return None
    return str(cs) if cs else None


def _filename(part: EmailMessage) -> str | None:
    try:
        name = part.get_filename()
    except Exception:  # noqa: BLE001
        name = None
    if name is None:
        try:
            name = part.get_param("name")
        except Exception:  # noqa: BLE001
            name = None
    if isinstance(name, tuple):  # RFC 2231 triple from compat32
        name = name[2]
    return _decode_words(str(name)) if name else None
