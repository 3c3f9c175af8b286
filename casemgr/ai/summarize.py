"""Extractive summaries (at most 2 sentences, in original order) and key facts by pattern.

Greeting, subject-like opening lines, signatures, disclaimers and quoted or pasted text are removed
first (casemgr.ai.emailclean), so a summary never repeats "Hello," or the subject. A long sentence is
cut at a word boundary: a summary must be much shorter than what it summarises.
"""

from __future__ import annotations

import re
from collections import Counter

from casemgr.ai.emailclean import author_text
from casemgr.ai.schemas import KeyFacts, Summary
from casemgr.ai.text import normalise

_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])|\n{2,}")
_AMOUNT = re.compile(
    r"(?:[$€£]\s?\d[\d,]*(?:\.\d{1,2})?(?:\s?(?:k|m|million|thousand|bn|billion))?\b)"
    r"|(?:\b\d[\d,]*(?:\.\d{1,2})?\s?(?:USD|EUR|GBP|CHF|dollars|euros?|pounds)\b)",
    re.IGNORECASE,
)
_MONTHS = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|Sep(?:t(?:ember)?)?|"
    r"Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"
)
_DATE = re.compile(
    rf"\b(?:\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}[/.]\d{{1,2}}[/.]\d{{2,4}}|{_MONTHS}\.?\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:day\s+of\s+)?{_MONTHS},?\s+\d{{4}})\b",
    re.IGNORECASE,
)
_ID = re.compile(
    r"\b(?:account|acct|contract|agreement|invoice|order|case|ticket|policy|loan|reference|ref|claim|customer)"
    r"\s*(?:number|no\.?|num|#|id)?\s*[:#]?\s*([A-Z0-9][A-Z0-9-]{3,})\b",
    re.IGNORECASE,
)
_CODE_ID = re.compile(r"\b[A-Z]{2,5}-\d{3,}\b")
_EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b")
_ORG = re.compile(
    r"\b((?:[A-Z][A-Za-z0-9&'.-]*\s){0,4}[A-Z][A-Za-z0-9&'.-]*,?\s(?:Inc|LLC|Ltd|Limited|Corp|Corporation|Company|Co|"
    r"Bank|N\.A|PLC|GmbH|AG|S\.A|LP|LLP|Group|Holdings|Services|Financial|Credit Union)\.?)(?=\W|$)"
)
_BANKS = re.compile(
    r"\b(Wells Fargo|Bank of America|Chase|JPMorgan Chase|Citibank|Citi|Capital One|Discover|American Express|Amex|"
    r"Synchrony|Barclays|Navient|Nelnet|Equifax|Experian|TransUnion|PayPal|Cash App|Zelle|Santander|US Bank|"
    r"U\.S\. Bank|PNC|TD Bank|Ally|USAA|SunTrust|Truist)\b"
)


_WANT = re.compile(r"\b(?:i\s+(?:want|would\s+like|request|ask|demand|expect|need)|i'd\s+like|please\s+(?:refund|reverse|"
                   r"correct|remove|fix|stop|send|close|explain)|refund(?:ed)?|reimburse)\b", re.IGNORECASE)


def _unique(items: list[str], limit: int = 10) -> list[str]:
    seen: dict[str, None] = {}
    for it in items:
        it = it.strip().strip(",")
        if it and it.lower() not in {s.lower() for s in seen}:
            seen[it] = None
    return list(seen)[:limit]


def key_facts(text: str) -> KeyFacts:
    ids = [m.group(1) for m in _ID.finditer(text) if any(ch.isdigit() for ch in m.group(1))]
    ids += _CODE_ID.findall(text)
    parties = [m.group(1) for m in _ORG.finditer(text)] + _BANKS.findall(text)
    return KeyFacts(
        amounts=_unique(_AMOUNT.findall(text)),
        dates=_unique(_DATE.findall(text)),
        ids=_unique(ids),
        parties=_unique(parties),
        emails=_unique(_EMAIL.findall(text)),
    )


def split_sentences(text: str) -> list[str]:
    flat = re.sub(r"[ \t]+", " ", text)
    parts = [re.sub(r"\s+", " ", p).strip() for p in _SENT_SPLIT.split(flat)]
    return [p for p in parts if len(p) >= 3]


def summarize(text: str, max_sentences: int = 2, max_chars: int = 320) -> Summary:
    """Pick the sentences that carry the most frequent content words and facts (centroid heuristic)."""
    body = author_text(text)
    # A short message gets a short summary: at most half its length (never under 140 characters), so a summary
    # of a 300-character complaint is not the complaint again (compression was 0.92 on the CFPB narratives).
    max_chars = min(max_chars, max(140, len(body) // 2))
    sentences = split_sentences(body)
    facts = key_facts(body)
    if not sentences:
        return Summary(summary="", sentences=[], key_facts=facts)
    tokens = [normalise(s).split() for s in sentences]
    freq = Counter(w for toks in tokens for w in set(toks))
    scored = []
    for i, toks in enumerate(tokens):
        if not toks:
            continue
        score = sum(freq[w] for w in set(toks)) / (len(set(toks)) ** 0.5)
        score += 1.5 * bool(_AMOUNT.search(sentences[i]) or _DATE.search(sentences[i]) or _ID.search(sentences[i]))
        score += 0.5 if i == 0 else 0.0  # the opening usually states the problem
        score += 2.0 * bool(_WANT.search(sentences[i]))  # what the person wants is half of a useful summary
        scored.append((score, i))
    # Best sentences first while they fit the budget, shown in their original order; a single sentence longer
    # than the budget is cut at a word boundary (CFPB narratives have no sentence ends at all).
    ranked = [i for _, i in sorted(scored, reverse=True)] or [0]
    chosen: list[int] = []
    used = 0
    for i in ranked:
        if len(chosen) == max_sentences:
            break
        if used + len(sentences[i]) <= max_chars:
            chosen.append(i)
            used += len(sentences[i]) + 1
    if not chosen:
        top = sentences[ranked[0]]
        picked = [top[:max_chars].rsplit(" ", 1)[0] + "…"]
    else:
        picked = [sentences[i] for i in sorted(chosen)]
    return Summary(summary=" ".join(picked), sentences=picked, key_facts=facts)
