"""Bytes to text for mail whose charset labels lie or are missing (issue 19).

Order: the declared charset; an ISO-2022-JP escape sequence wherever it appears; UTF-8; the charsets the message
declares elsewhere (another part, an encoded word); then detection; only then the single-byte fallback cp1252.
Every step but the last decodes strictly, so a wrong label fails instead of producing mojibake.

Detection: charset-normalizer proposes, and each candidate decoding (the East Asian multi-byte charsets, its
proposal, cp1252) is scored for plausibility: common Han characters (GB2312 level 1 / Big5 frequent set), kana,
KS X 1001 Hangul and ASCII score; half-width katakana, compatibility jamo, private-use characters and scripts
switching inside a word, typical of a wrong guess, cost. Short Chinese text is where charset-normalizer alone
guesses Korean or Japanese; the common-character sets tell them apart.
"""

from __future__ import annotations

import codecs
import contextvars
import unicodedata

# Labels that name a smaller charset than the one mailers really use under that name.
UPGRADE = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "iso-8859-1": "cp1252", "latin-1": "cp1252",
           "latin1": "cp1252", "ks_c_5601-1987": "cp949", "euc-kr": "cp949", "big5": "big5hkscs",
           "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932", "windows-874": "cp874",
           "iso-2022-jp": "iso2022_jp_ext", "csiso2022jp": "iso2022_jp_ext", "unicode-1-1-utf-7": "utf-7",
           "utf8": "utf-8", "x-unknown": "", "unknown-8bit": "", "unknown": "", "x-user-defined": ""}
ISO2022JP = ("iso2022_jp_ext", "iso2022_jp_2", "iso2022_jp_3", "iso2022_jp")
EAST_ASIAN = ("gb18030", "big5hkscs", "cp932", "euc_jp", "cp949")
_ASCIIISH = {"us-ascii", "ascii", "utf-8"}

# Charsets declared anywhere in the message being parsed (set by parse_message for its duration).
message_charsets: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("message_charsets", default=())


def normalise(label: str | None) -> str | None:
    """A codec name for a MIME charset label, or None when unknown or meaningless."""
    if not label:
        return None
    name = label.strip().strip('"').strip("'").lower()
    name = UPGRADE.get(name, name)
    if not name:
        return None
    try:
        codecs.lookup(name)
    except LookupError:
        return None
    return name


def _strict(data: bytes, codec: str) -> str | None:
    if codec.startswith("iso2022_jp") or codec == "iso-2022-jp":
        for variant in ISO2022JP:
            try:
                return data.decode(variant)
            except UnicodeDecodeError:
                continue
        return None
    try:
        return data.decode(codec)
    except (UnicodeDecodeError, LookupError, ValueError):
        return None


def decode(data: bytes, declared: str | None = None, *, notes: list[str] | None = None) -> str:
    """Decode mail text; see the module docstring for the order. Never raises."""
    if data.isascii() and b"\x1b" not in data:
        return data.decode("ascii")
    tried: list[str] = []

    def attempt(codec: str | None) -> str | None:
        if not codec or codec in tried:
            return None
        tried.append(codec)
        return _strict(data, codec)

    first = normalise(declared)
    if first and first not in ("ascii", "us-ascii"):
        text = attempt(first)
        if text is not None and not (b"\x1b$" in data and "\x1b" in text):
            return text
    if b"\x1b$" in data or b"\x1b(" in data:  # ISO-2022-JP escapes: 7-bit, so "valid" UTF-8 but unreadable
        text = attempt("iso2022_jp_ext")
        if text is not None:
            return text
    text = attempt("utf-8")
    if text is not None:
        return text
    for other in message_charsets.get():
        codec = normalise(other)
        if codec in ("ascii", "us-ascii", "cp1252"):
            continue  # single-byte labels decode anything: they stay last
        text = attempt(codec)
        if text is not None:
            _note(notes, f"charset: decoded with the message's other declared charset {codec}")
            return text
    guessed = detect(data)
    if guessed is not None:
        codec, text = guessed
        _note(notes, f"charset: detected {codec} (declared {declared or 'nothing'})")
        return text
    for other in message_charsets.get():
        text = attempt(normalise(other))
        if text is not None:
            return text
    return data.decode("cp1252", errors="strict") if _strict(data, "cp1252") is not None else data.decode("latin-1")


def _note(notes: list[str] | None, text: str) -> None:
    if notes is not None and text not in notes:
        notes.append(text)


def detect(data: bytes) -> tuple[str, str] | None:
    """The most plausible (codec, text) among strict decodings, or None if nothing beats cp1252."""
    pool: list[str] = []
    try:
        from charset_normalizer import from_bytes

        best = from_bytes(data[:20_000]).best()
        proposal = normalise(best.encoding) if best is not None and best.encoding else None
        if proposal:
            text = _strict(data, proposal)
            # A Latin single-byte proposal (iso8859_2 for French, ...) is cp1252's job: the Western default.
            if text is not None and _script_share(text) >= 0.5:
                pool.append(proposal)
    except Exception:  # noqa: BLE001 - detection is a hint; the scored candidates still decide
        pass
    pool += [c for c in (*EAST_ASIAN, "cp1251", "koi8_r", "cp1252") if c not in pool]
    scored: list[tuple[float, int, str, str]] = []
    for rank, codec in enumerate(pool):
        text = _strict(data, codec)
        if text is not None:
            scored.append((plausibility(text, codec), -rank, codec, text))
    if not scored:
        return None
    _, _, codec, text = max(scored)
    return None if codec == "cp1252" else (codec, text)


def _script_share(text: str) -> float:
    """Share of the non-ASCII letters that are not Latin (Cyrillic, Greek, CJK, ...)."""
    letters = [ch for ch in text if ord(ch) >= 0x80 and ch.isalpha()]
    if not letters:
        return 0.0
    return sum(1 for ch in letters if ord(ch) >= 0x250) / len(letters)


def _han_common(ch: str) -> bool:
    for codec, lo, hi in (("gb2312", 0xB0, 0xD7), ("big5", 0xA4, 0xC6)):
        try:
            b = ch.encode(codec)
        except UnicodeEncodeError:
            continue
        if len(b) == 2 and lo <= b[0] <= hi:
            return True
    return False


def _class(ch: str) -> str:
    o = ord(ch)
    if o < 0x80:
        return "latin" if ch.isalpha() else "ascii"
    if 0x4E00 <= o <= 0x9FFF:
        return "han"
    if 0x3040 <= o <= 0x30FF:
        return "kana"
    if 0xAC00 <= o <= 0xD7A3:
        return "hangul"
    if 0xFF61 <= o <= 0xFF9F:
        return "halfkana"
    if 0x3130 <= o <= 0x318F or 0x3200 <= o <= 0x33FF:
        return "oddsym"
    if 0xE000 <= o <= 0xF8FF or unicodedata.category(ch) in ("Co", "Cc", "Cn"):
        return "bad"
    if ch.isalpha():
        return "latin" if o < 0x250 else "letter"
    return "other"


_CHINESE = ("gb18030", "big5hkscs")
_JAPANESE = ("cp932", "euc_jp", "iso2022_jp_ext")
_WORD_SWITCH = ({"latin", "han"}, {"latin", "hangul"}, {"latin", "kana"}, {"latin", "letter"})


def plausibility(text: str, codec: str = "") -> float:
    """Average per-character plausibility of a decoding (higher is likelier to be what the sender wrote)."""
    if not text:
        return 0.0
    total = 0.0
    prev, prev_cls = "", ""
    for ch in text:
        cls = _class(ch)
        if cls == "han":
            common = 1.0 if _han_common(ch) else 0.2
            total += common * (0.3 if codec == "cp949" else 1.0)  # modern Korean is written in Hangul
        elif cls == "hangul":
            try:
                total += 1.0 if len(ch.encode("euc-kr")) == 2 else 0.1
            except UnicodeEncodeError:
                total += 0.1
            total -= 0.5 if codec in _CHINESE or codec in _JAPANESE else 0.0
        elif cls == "kana":
            total += 0.3 if codec in _CHINESE or codec == "cp949" else 1.0  # kana belong to Japanese text
        elif cls in ("ascii", "letter"):
            total += 1.0
        elif cls == "latin":
            # Accented Latin letters come one at a time among ASCII ones; runs of them are a wrong guess.
            total += 1.0 if ord(ch) < 0x80 or ord(prev or "a") < 0x80 or prev_cls != "latin" else 0.3
        elif cls == "other":
            total += 0.5
        elif cls in ("halfkana", "oddsym"):
            total -= 1.0
        else:
            total -= 2.0
        if prev and {cls, prev_cls} in _WORD_SWITCH:
            total -= 1.0  # a script change inside a word
        if prev.isalpha() and prev.islower() and ch.isupper():
            total -= 0.5  # "зДРБЧУ": a capital after a small letter inside a word
        prev, prev_cls = ch, cls
    return total / len(text)
