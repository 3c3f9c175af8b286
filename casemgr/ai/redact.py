"""PII redaction before text leaves the machine for an external provider."""

from __future__ import annotations

import re
from collections.abc import Iterable

ALL_KINDS: tuple[str, ...] = ("email", "iban", "card", "phone")

_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
# IBAN: country code, 2 check digits, 11-30 alphanumerics, optionally grouped by spaces.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,4})?\b")
_CARD = re.compile(r"\b(?:\d[ -]?){12,18}\d\b")
_PHONE = re.compile(r"(?<![\w/])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]?\d{2,4}){1,3}(?![\w/])")


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def _iban_ok(raw: str) -> bool:
    s = raw.replace(" ", "")
    if not 15 <= len(s) <= 34:
        return False
    moved = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in moved)
    return int(num) % 97 == 1


def redact(text: str, kinds: Iterable[str] = ALL_KINDS) -> str:
    """Replace each PII kind with a typed placeholder such as [EMAIL]. Order matters: an IBAN or a
    card number also looks like a phone number, so the more specific kinds go first."""
    wanted = set(kinds)
    unknown = wanted - set(ALL_KINDS)
    if unknown:
        raise ValueError(f"unknown PII kind(s): {', '.join(sorted(unknown))}")
    if "email" in wanted:
        text = _EMAIL.sub("[EMAIL]", text)
    if "iban" in wanted:
        text = _IBAN.sub(lambda m: "[IBAN]" if _iban_ok(m.group(0)) else m.group(0), text)
    if "card" in wanted:
        def card(m: re.Match[str]) -> str:
            digits = re.sub(r"\D", "", m.group(0))
            return "[CARD]" if 13 <= len(digits) <= 19 and _luhn_ok(digits) else m.group(0)

        text = _CARD.sub(card, text)
    if "phone" in wanted:
        def phone(m: re.Match[str]) -> str:
            digits = re.sub(r"\D", "", m.group(0))
            # Dates and short ids are not phone numbers.
            if not 7 <= len(digits) <= 15 or re.fullmatch(r"\d{4}-\d{2}-\d{2}", m.group(0).strip()):
                return m.group(0)
            return "[PHONE]"

        text = _PHONE.sub(phone, text)
    return text
