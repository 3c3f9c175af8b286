"""Parse raw RFC 5322 bytes into one normalised inbound message, defensively.

Python's `email` package with the modern policy does the work; any header it cannot parse is re-read from the
raw header text with the compat32 decoder. Charsets: casemgr.intake.charsets (declared, the message's other
declared charsets, detection, then cp1252). Senders are read leniently and every repair is recorded in `notes`
("repaired: ..."): an unfolded continuation line, a trailing dot in the domain, a broken encoded word, an empty
first address, From missing or unusable but Reply-To/Sender usable. Nothing here executes, renders or extracts
attachments.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.header import decode_header
from email.headerregistry import HeaderRegistry
from email.message import Message as EmailMessage
from email.utils import getaddresses, parsedate_to_datetime

from casemgr.intake import charsets
from casemgr.intake.enums import AttachmentKind
from casemgr.intake.htmltext import html_split
from casemgr.limits import (
    ATTACHMENT_EXT_CHARS,
    ATTACHMENT_FILENAME_CHARS,
    ATTACHMENT_STEM_CHARS,
    HEADER_LIST_ITEMS,
    PARSE_NOTES_ITEMS,
)


class _HeaderClasses(HeaderRegistry):
    """email's header registry, with each header class built once per name.

    HeaderRegistry builds a new class (`type(...)`) every time a header is read, though the class depends only on
    the header's name: a class per header read was about a fifth of parsing a plain message (issue 23 profile).
    """

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        cls = self._classes.get(key)
        if cls is None:
            cls = self._classes[key] = super().__getitem__(name)
        return cls


# email.policy.default with the registry above (the same parsing; what a parsed message carries as its policy).
POLICY = email.policy.default.clone(header_factory=_HeaderClasses())

MAX_MIME_DEPTH = 12
MAX_PARTS = 300
MAX_BODY_CHARS = 100_000
SYNTHETIC_DOMAIN = "synthetic.casemgr"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CTRL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# Everything str.splitlines() breaks on, and what the email package refuses in a header value (issue 18):
# U+0085 NEL, U+2028 LINE SEPARATOR and U+2029 PARAGRAPH SEPARATOR besides the C0 controls.
_HEADER_CTRL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")
_TEXT_BREAKS = re.compile(r"[\x85\u2028\u2029]")


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
    kind: str = AttachmentKind.DOCUMENT

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


def decode_bytes(data: bytes, declared: str | None, notes: list[str] | None = None) -> str:
    """Decode a body or header (casemgr.intake.charsets: declared first, never raises)."""
    return charsets.decode(data, declared, notes=notes)


def clean_text(value: str) -> str:
    """Drop control characters except newline and tab; normalise newlines."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = _TEXT_BREAKS.sub("\n", value)  # Unicode line/paragraph separators are line breaks in stored text
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


_EW = re.compile(r"=\?[^?\s]+\?[QqBb]\?[^?\s]*(?:\?=)?")


def _close_encoded_words(raw: str) -> tuple[str, bool]:
    """Close encoded words a mailer left open (`=?utf-8?Q?J=C3=B6rg M...`); True if one was."""
    repaired = False

    def fix(m: re.Match[str]) -> str:
        nonlocal repaired
        word = m.group(0)
        if word.endswith("?="):
            return word
        repaired = True
        return word + "?="

    return _EW.sub(fix, raw), repaired


def _decode_words(raw: str) -> str:
    """compat32-style decoding of RFC 2047 encoded words, tolerant of bad charsets."""
    raw, _ = _close_encoded_words(raw)
    try:
        chunks = decode_header(raw)
    except Exception:  # noqa: BLE001
        return _unescape_surrogates(raw)
    out = []
    for chunk, cs in chunks:
        if isinstance(chunk, bytes) and cs is None:
            # decode_header hands back the text between encoded words as raw-unicode-escape bytes.
            out.append(_unescape_surrogates(chunk.decode("raw-unicode-escape", errors="replace")))
        elif isinstance(chunk, bytes):
            try:
                out.append(decode_bytes(chunk, cs))
            except Exception:  # noqa: BLE001
                out.append(chunk.decode("latin-1"))
        else:
            out.append(_unescape_surrogates(chunk))
    return "".join(out)


# An undecoded 8-bit byte, kept by the parser as a surrogate escape (a regex: a generator over every character
# of every header read was a tenth of parsing a plain message).
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")


# Headers whose text the modern parser returns unchanged when the raw value is printable ASCII without an encoded
# word (unstructured ones; a Message-ID of plain atoms): header() returns that raw value without building a parse
# tree, which was a third of parsing a plain message (issue 23 profile). tests/intake/test_header_fast_path.py
# compares the two ways over random values.
_AS_IS = frozenset({"subject", "in-reply-to", "auto-submitted"})
_PLAIN_VALUE = re.compile(r"[\x20-\x7e]*")
_PLAIN_MSGID = re.compile(r"<[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+@[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+>")


def header(msg: EmailMessage, name: str) -> str | None:
    """A header's decoded text, falling back to the raw header value when the modern parser fails."""
    key = name.lower()
    if key in _AS_IS or key == "message-id":
        for k, raw in msg.raw_items():
            if k.lower() == key:
                if (isinstance(raw, str) and "=?" not in raw and _PLAIN_VALUE.fullmatch(raw)
                        and (key != "message-id" or _PLAIN_MSGID.fullmatch(raw))):
                    return raw
                break
        else:
            return None
    return parsed_header(msg, name)


def parsed_header(msg: EmailMessage, name: str) -> str | None:
    """header() through the modern parser always."""
    try:
        value = msg.get(name)
        if value is None:
            return None
        text = str(value)
        if "=?" in text or "\ufffd" in text or _ESCAPED_BYTE.search(text):
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


_EXTENSIONS = {"image/jpeg": ".jpg", "image/pjpeg": ".jpg", "text/plain": ".txt", "message/rfc822": ".eml",
               "application/pkcs7-signature": ".p7s", "application/x-pkcs7-signature": ".p7s",
               "application/pgp-signature": ".asc", "application/octet-stream": ".bin"}
SIGNATURE_TYPES = frozenset({"application/pkcs7-signature", "application/x-pkcs7-signature",
                             "application/pgp-signature"})


def sanitise_filename(name: str | None, content_type: str, index: int) -> str:
    """Keep only a safe base name: no directories, no control characters, no leading dots."""
    name = _unescape_surrogates(name or "")
    name = unicodedata.normalize("NFKC", name)
    name = re.split(r"[/\\]", name)[-1]
    name = _HEADER_CTRL.sub("", name)
    name = re.sub(r"[^\w.\- ()+,@=\[\]]", "_", name).strip(" .")
    if not name:
        # A part with only a Content-ID or a content type: named after its type (`image-1.gif`).
        ext = _EXTENSIONS.get(content_type.lower()) or mimetypes.guess_extension(content_type) or ".bin"
        major = content_type.split("/", 1)[0].lower()
        name = f"{major if major in ('image', 'audio', 'video', 'text') else 'attachment'}-{index}{ext}"
    if len(name) > ATTACHMENT_FILENAME_CHARS:
        stem, dot, ext = name.rpartition(".")
        name = ((stem[:ATTACHMENT_STEM_CHARS] + "." + ext[:ATTACHMENT_EXT_CHARS]) if dot and len(ext) <= ATTACHMENT_EXT_CHARS
                else name[:ATTACHMENT_FILENAME_CHARS])
    return name


def _addr(value: str, repairs: list[str] | None = None) -> str | None:
    value = value.strip().strip("<>").strip()
    if value.endswith(".") and "@" in value:  # `ann@example.org.`: the root dot of a fully qualified domain
        value = value.rstrip(".")
        if repairs is not None:
            repairs.append("repaired: trailing dot removed from the sender's domain")
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain or len(value) > 320 or any(c.isspace() for c in value) \
            or any(c in value for c in '<>",;()[]\\'):
        return None
    return value.lower() if value.isascii() else value


_HEADER_NAME = re.compile(rb"^[A-Za-z0-9][A-Za-z0-9_-]{0,75}:")


def repair_header_block(raw: bytes) -> tuple[bytes, bool]:
    """Fold lines that sit between headers but are neither a header nor a continuation (a mailer broke a long
    From or Subject without the leading space): the modern parser would end the header block there and lose
    every header after it. Lines after the last real header are left alone (a missing blank line)."""
    end = re.search(rb"\r?\n\r?\n", raw)
    head = raw[:end.start()] if end else raw
    if len(head) > 256 * 1024:
        return raw, False
    lines = head.split(b"\n")
    last_header = max((i for i, line in enumerate(lines) if _HEADER_NAME.match(line)), default=-1)
    repaired = False
    for i in range(1, last_header):
        line = lines[i]
        if line.strip(b"\r") and line[:1] not in (b" ", b"\t") and not _HEADER_NAME.match(line):
            lines[i] = b" " + line
            repaired = True
    if not repaired:
        return raw, False
    return b"\n".join(lines) + (raw[end.start():] if end else b""), True


_ANGLE = re.compile(r"<([^<>]*)>")


def _mailboxes(value: str) -> list[tuple[str, str]]:
    """(display name, address) pairs of an address header's raw text, leniently."""
    value = _HEADER_CTRL.sub(" ", value)
    angles = _ANGLE.findall(value)
    if len([a for a in angles if "@" in a]) == 1 and value.count("<") == 1:
        # `Müller, Jörg <j@x>` with raw 8-bit or an unquoted comma: everything before the bracket is the name.
        name = value[: value.index("<")].strip().strip('"').strip()
        return [(name, angles[0])]
    return getaddresses([value])


def _display_name(name: str) -> str:
    name = _decode_words(name.strip().strip('"').strip())
    return clean_header(_unescape_surrogates(name).strip().strip('"').strip(), 300)


def find_sender(msg: EmailMessage, notes: list[str]) -> tuple[str | None, str | None]:
    """The address to answer and its display name: the first usable From mailbox, else Reply-To, else Sender.

    Quarantine is for mail with truly no reply address; every repair on the way is recorded in `notes`.
    """
    for hname in ("From", "Reply-To", "Sender"):
        for raw_value in _raw_values(msg, hname):
            repairs: list[str] = []
            raw_value, reopened = _close_encoded_words(raw_value)
            for position, (name, address) in enumerate(_mailboxes(raw_value)):
                addr = _addr(_unescape_surrogates(address), repairs)
                if addr is None:
                    continue
                if position > 0:
                    repairs.append(f"repaired: first {hname} address was empty or unusable; used the next one")
                if reopened:
                    repairs.append(f"repaired: unterminated encoded word in the {hname} display name")
                if hname != "From":
                    repairs.append(f"repaired: no usable From address; replying to the {hname} address")
                decoded = _display_name(name) or None
                if decoded and not _utf8(name):
                    repairs.append(f"repaired: undeclared 8-bit {hname} display name decoded")
                notes.extend(r for r in repairs if r not in notes)
                return addr, decoded
    return None, None


def _utf8(value: str) -> bool:
    """False for undeclared 8-bit bytes that are not UTF-8 (RFC 6532 allows UTF-8 in headers)."""
    try:
        value.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _raw_values(msg: EmailMessage, name: str) -> list[str]:
    return [str(raw) for key, raw in msg.raw_items() if key.lower() == name.lower()]


def _declared_charsets(msg: EmailMessage, raw_head: bytes) -> tuple[str, ...]:
    found: list[str] = []
    for part in msg.walk():
        cs = _charset(part)
        if cs and cs.lower() not in found:
            found.append(cs.lower())
    for m in re.finditer(rb"=\?([A-Za-z0-9_.:-]{1,40})(?:\*[A-Za-z-]+)?\?[QqBb]\?", raw_head):
        cs = m.group(1).decode("ascii").lower()
        if cs not in found:
            found.append(cs)
    return tuple(found[:10])


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
    repaired_raw, unfolded = repair_header_block(raw)
    try:
        msg = email.message_from_bytes(repaired_raw, policy=POLICY)
    except Exception as exc:  # noqa: BLE001
        try:
            msg = email.message_from_bytes(repaired_raw, policy=email.policy.compat32)
        except Exception:  # noqa: BLE001
            raise ParseError(f"unparseable message: {type(exc).__name__}: {exc}") from None
    notes = [type(d).__name__ for d in getattr(msg, "defects", [])][:PARSE_NOTES_ITEMS]
    if unfolded:
        notes.append("repaired: unfolded continuation line in the header block joined to its header")

    known = {k.lower() for k in msg.keys()}
    if not known & {"from", "to", "subject", "date", "message-id", "received", "sender", "reply-to"}:
        raise ParseError("not an RFC 5322 message: no From, To, Subject, Date or Message-ID header")
    token = charsets.message_charsets.set(_declared_charsets(msg, repaired_raw[:65536]))
    try:
        return _parse(msg, raw, notes)
    finally:
        charsets.message_charsets.reset(token)


def _parse(msg: EmailMessage, raw: bytes, notes: list[str]) -> ParsedMessage:
    mid_list = msgids(header(msg, "Message-ID"))
    synthetic = not mid_list
    message_id = mid_list[0] if mid_list else synthetic_message_id(raw)
    in_reply = msgids(header(msg, "In-Reply-To"))
    refs = msgids(" ".join(header_all(msg, "References")))

    sender, sender_name = find_sender(msg, notes)
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
    hidden_parts: list[str] = []
    if htmls:
        split = [html_split(h) for h in htmls]
        hidden_parts = [h for _, h in split if h]
        if not body.strip():
            body = "\n\n".join(v for v, _ in split if v)
            notes.append("html-only body converted to text")
            if not body.strip() and hidden_parts:
                # Never store an empty body silently: everything in the HTML was hidden, so keep that text,
                # flagged, rather than nothing (an agent sees the flag; the raw message is kept either way).
                body = "\n\n".join(hidden_parts)
                notes.append("flag: the HTML body shows no visible text; its hidden text was kept as the body")
    if hidden_parts:
        notes.append("hidden HTML text kept apart for the audit (not in the body)")
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
        references=[clean_header(r) for r in refs][:HEADER_LIST_ITEMS],
        sender=sender, sender_name=sender_name,
        recipients=recipients[:HEADER_LIST_ITEMS], subject=subject, sent_at=sent_at, body_text=body,
        attachments=attachments, auto_submitted=auto not in ("", "no"), is_bounce=bool(bounce), notes=notes,
        content_sha256=content_digest(raw), hidden_text=clean_text("\n".join(hidden_parts))[:20_000],
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
        name = _filename(part) or _inner_subject(inner, data)
        attachments.append(ParsedAttachment(sanitise_filename(name, "message/rfc822", len(attachments) + 1),
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
        plains.append(decode_bytes(data, _charset(part), notes))
        return
    if ctype == "text/html" and is_body:
        htmls.append(decode_bytes(data, _charset(part), notes))
        return
    if ctype == "application/ms-tnef" and not filename:
        filename = "winmail.dat"
    if ctype == "application/ms-tnef" or (filename or "").lower() == "winmail.dat":
        _expand_tnef(data, plains, attachments, counter, notes)
    cid = part.get("Content-ID")
    signature = ctype in SIGNATURE_TYPES
    if signature:
        notes.append(f"signature part kept as a signature, not a document ({ctype})")
    attachments.append(ParsedAttachment(
        filename=sanitise_filename(filename, ctype, len(attachments) + 1),
        content_type=clean_header(ctype, 255), data=data,
        inline=disposition == "inline" or (cid is not None and disposition != "attachment"),
        content_id=clean_header(str(cid), 300) if cid else None,
        kind=AttachmentKind.SIGNATURE if signature else AttachmentKind.DOCUMENT,
    ))


def _inner_subject(inner: object, data: bytes) -> str | None:
    """A forwarded message's subject, as the name of its attachment (`Invoice 42.eml`)."""
    subject = None
    try:
        if isinstance(inner, list) and inner:
            subject = header(inner[0], "Subject")
        else:
            subject = header(email.message_from_bytes(data[:65536], policy=POLICY), "Subject")
    except Exception:  # noqa: BLE001 - a nameless forward is still kept
        subject = None
    subject = clean_header(subject or "", 150).replace("/", "-").replace("\\", "-")
    return f"{subject}.eml" if subject else None


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
        sub = email.message_from_bytes(rebuilt.encode("utf-8", "surrogateescape"), policy=POLICY)
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
