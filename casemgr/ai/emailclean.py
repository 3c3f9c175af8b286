"""The customer's own words out of a real email, before any model judges it.

Real mail wraps a complaint in a greeting, a signature, a legal disclaimer, quoted earlier replies
and sometimes a pasted advert or a forwarded bank letter. The product words in those parts pull the
classifier towards the wrong product (an advert for a credit card pasted under a mortgage complaint).
We drop such parts for the models only; the agent always sees the full text.

Paragraph-level removals apply only when the message has more than one paragraph, so a one-line
complaint (like the training narratives) is never emptied.
"""

from __future__ import annotations

import re
from functools import lru_cache

from casemgr.ai.text import CACHE_MAX_CHARS, strip_html, strip_quoted_and_signature

_GREETING_RE = re.compile(
    r"^\s*(?:hi|hello|hey|dear|good (?:morning|afternoon|evening)|greetings|to whom it may concern)\b[^\n]{0,60}?[,:!.]?\s*$",
    re.IGNORECASE,
)
_DISCLAIMER_RE = re.compile(
    r"(?:this (?:e-?mail|message)[^.]{0,80}(?:confidential|privileged|intended (?:solely |only )?for))|"
    r"(?:if you (?:are not|have received this)[^.]{0,60}(?:intended recipient|in error))|"
    r"(?:virus[- ]free|scanned for viruses)|(?:please consider the environment before printing)",
    re.IGNORECASE,
)
_ADVERT_CUES = [
    r"\d+(?:\.\d+)?\s?% (?:apr|intro|introductory|cash ?back|off)", r"apply (?:now|today|online)",
    r"terms (?:and conditions )?apply",
    r"limited[- ]time", r"pre-?approved", r"sign up (?:now|today)", r"special offer", r"don'?t miss", r"earn (?:up to )?\d",
    r"bonus (?:points|miles|offer)", r"no annual fee", r"click here", r"unsubscribe", r"offer (?:ends|expires|valid)",
    r"see (?:store|website) for details", r"(?:call|visit) (?:us )?(?:today|now)", r"rates? as low as",
    r"get (?:approved|started)",
]
_ADVERT_RE = re.compile("|".join(_ADVERT_CUES), re.IGNORECASE)
_FORWARD_RE = re.compile(r"^\s*(?:-{2,}\s*forwarded message\s*-{2,}|begin forwarded message:?)\s*$", re.IGNORECASE | re.MULTILINE)
_PARA_SPLIT = re.compile(r"\n\s*\n")


def _is_advert(para: str) -> bool:
    return len({m.group(0).lower() for m in _ADVERT_RE.finditer(para)}) >= 2


def author_text(text: str) -> str:
    """Greeting, signature, quoted replies, disclaimers, adverts and forwarded parts removed."""
    # A case's text is cleaned once per model vocabulary and once for its summary: keep the last few.
    return _author_text_cached(text) if len(text) <= CACHE_MAX_CHARS else _author_text(text)


def _author_text(text: str) -> str:
    text = strip_html(text)
    m = _FORWARD_RE.search(text)
    if m and text[: m.start()].strip():
        text = text[: m.start()]  # the sender's own words come before what they forwarded
    text = strip_quoted_and_signature(text)
    paras = [p for p in _PARA_SPLIT.split(text) if p.strip()]
    if len(paras) > 1:
        kept = [p for p in paras if not _is_advert(p) and not _DISCLAIMER_RE.search(p)]
        paras = kept or paras
    lines = "\n\n".join(paras).splitlines()
    while lines and (not lines[0].strip() or _GREETING_RE.match(lines[0])):
        lines.pop(0)
    return "\n".join(lines).strip() or text.strip()


_author_text_cached = lru_cache(maxsize=256)(_author_text)
