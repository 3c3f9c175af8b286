"""Is this message something the complaint models should judge at all?

Every message used to be forced into one of the five products. Before a product or an urgency is
trusted we ask three questions, each with its evidence:
- language: py3langid (its model ships inside the package, nothing is fetched) — the models were
  trained on English only;
- spam / phishing: transparent cue patterns of bulk mail and credential-harvesting mail;
- out of scope: English, not spam, but with (almost) no word of the financial-services domain.
A message that fails any of them goes to people (`needs_human`) with low confidence on everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import re2

from casemgr.ai.cues import cue_lexicon
from casemgr.ai.text import normalise, strip_html

# Words of the domain beyond the per-product cue lexicon: a complaint about money names some of these.
_DOMAIN_WORDS = frozenset("""
account bank banking card credit debit loan mortgage debt collector collection payment paid pay charge charged fee
fees interest balance statement report reporting bureau score dispute refund transfer deposit withdrawal check
overdraft lender servicer escrow foreclosure lease contract invoice billing bill owe owed fraud identity theft
transaction money fund funds loan student auto car vehicle apr rate insurance escrow payoff modification
company bankruptcy court caller call calling harassment seller merchant claim checking checkings savings application
dollar cash owe lawsuit attorney letter proof verification validation chase wells citi capitalone equifax experian
transunion navient nelnet paypal venmo zelle atm branch teller purchase order refund
""".split())

_SPAM = [
    r"unsubscribe", r"limited[- ]time offer", r"act now", r"buy now", r"\d{1,2}\s?% off", r"free (?:trial|gift|shipping)",
    r"click (?:here|below) to (?:claim|get|buy|order|shop)", r"viagra|cialis|casino|lottery|jackpot",
    r"you (?:have|'ve) (?:won|been selected)", r"congratulations[,!]? you", r"special promotion", r"opt[- ]out",
    r"work from home", r"earn \$?\d+ (?:per|a) (?:day|week)", r"crypto(?:currency)? (?:investment|opportunity)",
    r"this is an advertisement", r"exclusive (?:deal|offer)",
]
_PHISHING = [
    r"verify your (?:account|identity|password|login)", r"your account (?:has been|will be) (?:suspended|locked|closed)",
    r"confirm your (?:password|login|credentials|bank details)", r"update your (?:payment|billing) (?:details|information)",
    r"(?:log|sign) ?in (?:here|now|immediately) to", r"wire (?:the )?(?:transfer|funds) (?:to|urgently)",
    r"gift cards?", r"bitcoin wallet", r"inheritance|next of kin|beneficiary of the (?:late|deceased)",
    r"within 24 hours or", r"reset your password (?:here|now|immediately)",
]
_SPAM_RE = re.compile("|".join(_SPAM), re.IGNORECASE)
_PHISHING_RE = re.compile("|".join(_PHISHING), re.IGNORECASE)
_URL_RE = re.compile(r"https?://\S+", re.IGNORECASE)


def _superset(patterns: list[str]) -> Any:
    # RE2's \d and \s are ASCII; these classes match at least what Python's do, so no text the `re` patterns
    # match can be passed over (tests/ai/test_scope_prefilter.py).
    return re2.compile("(?i)" + "|".join(patterns).replace(r"\d", r"\pN").replace(r"\s", r"[\s\pZ\x{1c}-\x{1f}\x{85}]"))


# Which messages need the `re` scan at all: RE2 runs the cue alternation as one automaton, about 10x faster,
# and most messages hold no cue (the scan was 3% of an AI enrichment batch's CPU, issue 23).
_SPAM_ANY = _superset(_SPAM)
_PHISHING_ANY = _superset(_PHISHING)


def _cue_hits(any_: Any, exact: re.Pattern[str], text: str) -> list[str]:
    if any_.search(text) is None:
        return []
    return sorted({m.group(0).lower() for m in exact.finditer(text)})


MIN_WORDS_FOR_LANGUAGE = 4
LANGUAGE_MIN_PROB = 0.8


@dataclass
class ScopeResult:
    language: str = "en"
    language_confidence: float = 1.0
    spam: bool = False
    phishing: bool = False
    out_of_scope: bool = False
    evidence: list[str] = field(default_factory=list)

    @property
    def in_scope(self) -> bool:
        return self.language == "en" and not (self.spam or self.phishing or self.out_of_scope)

    @property
    def reason(self) -> str | None:
        if self.phishing:
            return "phishing"
        if self.spam:
            return "spam"
        if self.language != "en":
            return f"language:{self.language}"
        if self.out_of_scope:
            return "out_of_scope"
        return None


@lru_cache(maxsize=1)
def _identifier():  # type: ignore[no-untyped-def]
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


@lru_cache(maxsize=1)
def _domain_terms() -> frozenset[str]:
    terms: set[str] = set(_DOMAIN_WORDS)
    for words in cue_lexicon().values():
        terms |= {w for w in words if " " not in w}
    return frozenset(terms)


def detect_language(text: str) -> tuple[str, float]:
    letters = re.sub(r"[^\w\s]", " ", text)
    if len(letters.split()) < MIN_WORDS_FOR_LANGUAGE:
        return "en", 0.0  # too short to tell: say nothing, do not flag
    lang, prob = _identifier().classify(letters)
    return str(lang), round(float(prob), 3)


def assess(text: str) -> ScopeResult:
    plain = strip_html(text)
    res = ScopeResult()
    lang, prob = detect_language(plain)
    if lang != "en" and prob >= LANGUAGE_MIN_PROB:
        res.language, res.language_confidence = lang, prob
        res.evidence.append(f"language {lang} ({prob:.2f})")
    else:
        res.language_confidence = prob if lang == "en" else round(1 - prob, 3)
    spam_hits = _cue_hits(_SPAM_ANY, _SPAM_RE, plain)
    phish_hits = _cue_hits(_PHISHING_ANY, _PHISHING_RE, plain)
    urls = len(_URL_RE.findall(plain))
    # One marketing phrase can appear in a real complaint ("they said act now"); two, or one with links, cannot.
    if len(spam_hits) >= 2 or (spam_hits and urls >= 2):
        res.spam = True
        res.evidence += [f"spam cue: {h}" for h in spam_hits[:4]]
    if len(phish_hits) >= 2 or (phish_hits and urls >= 1):
        res.phishing = True
        res.evidence += [f"phishing cue: {h}" for h in phish_hits[:4]]
    if res.language == "en" and not (res.spam or res.phishing):
        words = normalise(plain).split()
        domain = [w for w in words if w in _domain_terms()]
        # Zero domain words in a message of some length: a complaint about money names at least one.
        if len(words) >= 8 and not domain:
            res.out_of_scope = True
            res.evidence.append(f"{len(domain)} financial-services words in {len(words)}")
    return res
