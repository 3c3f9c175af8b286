"""Turn raw intake text (email bodies, web forms) into the form the complaint training data has.

The CFPB narratives we train on were lowercased, stripped of punctuation, digits and the
XXXX masks, had NLTK's English stopwords removed and plural nouns singularised. A raw email
must go through the same steps or the classifier sees words it never learnt.
"""

from __future__ import annotations

import html
import re
from functools import lru_cache
from importlib import resources

_TAG_RE = re.compile(r"<(script|style)\b.*?</\1>|<[^>]+>", re.IGNORECASE | re.DOTALL)
_REPLY_HEADER_RE = re.compile(
    r"^(on\s.{0,200}\swrote:|-{2,}\s*original message\s*-{2,}|from:\s.+|(?:-{2,}\s*)?sent from my \w+.*|"
    r"_{5,}|-----+\s*forwarded message.*)$",
    re.IGNORECASE,
)
_SIGNATURE_RE = re.compile(
    r"^(--\s*|regards,?|best regards,?|kind regards,?|thanks,?|thank you,?|sincerely,?|cheers,?|"
    r"best,?|yours (truly|faithfully|sincerely),?)$",
    re.IGNORECASE,
)
_WORD_RE = re.compile(r"[a-z]+")
_MASK_RE = re.compile(r"\bx{2,}\b")


@lru_cache(maxsize=1)
def stopwords() -> frozenset[str]:
    """NLTK's English list (the one the training data was cleaned with), shipped as a file."""
    text = resources.files("casemgr.ai").joinpath("lexicons/stopwords_en.txt").read_text(encoding="utf-8")
    return frozenset(w.strip() for w in text.split() if w.strip())


def strip_html(text: str) -> str:
    if "<" not in text or ">" not in text:
        return text
    text = re.sub(r"<br\s*/?>|</p>|</div>|</tr>|</li>", "\n", text, flags=re.IGNORECASE)
    return html.unescape(_TAG_RE.sub(" ", text))


def strip_quoted_and_signature(text: str) -> str:
    """Keep the author's own words: cut at a reply header or signature, drop '>' quoted lines."""
    kept: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if _REPLY_HEADER_RE.match(stripped) or _SIGNATURE_RE.match(stripped):
            # Only a cut when something was said already; a letter may start with "From: ...".
            if any(k.strip() for k in kept):
                break
            continue
        if stripped.startswith(">"):
            continue
        kept.append(line)
    return "\n".join(kept)


def singularise(word: str, vocabulary: frozenset[str] | set[str] | None = None) -> str:
    """A small noun lemmatiser: the data's plural nouns were singularised (WordNet-style)."""
    # Without a vocabulary we cannot tell "accounts" from "always": leave the word alone.
    if vocabulary is None or len(word) <= 3 or not word.endswith("s") or word.endswith(("ss", "us", "is")):
        return word
    if word in vocabulary:
        return word
    if word.endswith("ies") and len(word) > 4:
        cand = word[:-3] + "y"
    elif word.endswith(("ches", "shes", "xes", "sses")):
        cand = word[:-2]
    else:
        cand = word[:-1]
    return cand if cand in vocabulary else word


# One classification normalises the same text for each of its three models (category, urgency, intent), again
# for their cue words, and every sentence of it once per model for the evidence sentence: ~15 passes per case,
# a sixth of the AI drain's CPU (issue 23 profile). Texts up to CACHE_MAX_CHARS are kept, so the cache holds at
# most NORMALISE_CACHE x that (a few MB), and a text is cached with the vocabulary it was normalised against.
CACHE_MAX_CHARS = 20_000
NORMALISE_CACHE = 1024


def normalise(text: str, vocabulary: frozenset[str] | set[str] | None = None, max_chars: int = 0) -> str:
    """Raw text -> lowercase content words, as in the training CSV. Idempotent on clean data."""
    if len(text) > CACHE_MAX_CHARS or (vocabulary is not None and not isinstance(vocabulary, frozenset)):
        return _normalise(text, vocabulary, max_chars)
    return _normalise_cached(text, vocabulary, max_chars)


def _normalise(text: str, vocabulary: frozenset[str] | set[str] | None, max_chars: int) -> str:
    from casemgr.ai.emailclean import author_text  # emailclean builds on this module's helpers

    text = author_text(text)
    text = text.lower().replace("'", "").replace("\u2019", "")
    text = _MASK_RE.sub(" ", text)
    stop = stopwords()
    words = [singularise(w, vocabulary) for w in _WORD_RE.findall(text) if w not in stop]
    out = " ".join(w for w in words if w and w not in stop)
    if max_chars and len(out) > max_chars:
        out = out[:max_chars].rsplit(" ", 1)[0]
    return out


_normalise_cached = lru_cache(maxsize=NORMALISE_CACHE)(_normalise)
