"""Urgency and sentiment from transparent lexicons (no labelled data exists for either).

Each score says which cues fired. Confidence is honest: it grows with the amount of evidence
and the margin between the winning and the runner-up label, and stays near the prior (~0.5)
when nothing fired, because then we simply do not know.
"""

from __future__ import annotations

import math
import re

_URGENT_CRITICAL = [
    r"foreclos\w*", r"evict\w*", r"lawsuit", r"sued", r"garnish\w*", r"repossess\w*", r"identity theft",
    r"fraud\w*", r"stolen", r"scam\w*", r"cannot (?:pay|afford) (?:rent|food|medication)", r"homeless",
    r"life[- ]threatening", r"suicid\w*", r"emergency", r"court date", r"(?:account|funds?) (?:frozen|locked)",
]
_URGENT_HIGH = [
    r"urgent\w*", r"asap", r"immediately", r"right away", r"today", r"tomorrow", r"deadline", r"final notice",
    r"past due", r"overdue", r"late fee", r"harass\w*", r"threat\w*", r"collections?", r"escalat\w*",
    r"attorney", r"lawyer", r"legal action", r"cfpb", r"regulator", r"complaint", r"unauthori[sz]ed",
    r"locked out", r"no access", r"can ?not access", r"still (?:not|no)", r"again", r"multiple times",
]
_URGENT_LOW = [r"no rush", r"whenever", r"at your convenience", r"just (?:a )?question", r"fyi", r"curious",
               r"when you (?:get|have) (?:a )?(?:chance|time)", r"not urgent", r"suggestion"]

_NEGATIVE = [
    r"angry", r"upset", r"frustrat\w*", r"disappoint\w*", r"terrible", r"horrible", r"awful", r"worst",
    r"unacceptable", r"ridiculous", r"outrage\w*", r"incompetent", r"rude", r"lie[sd]?", r"lying", r"scam\w*",
    r"fraud\w*", r"illegal\w*", r"unfair\w*", r"wrong\w*", r"error", r"mistake", r"refus\w*", r"ignor\w*",
    r"never (?:received|responded|answered|heard)", r"no (?:response|reply|help)", r"harass\w*", r"threat\w*",
    r"stress\w*", r"damag\w*", r"nightmare", r"useless", r"fail\w*", r"problem", r"issue", r"complain\w*",
    r"dispute\w*", r"denied", r"charged (?:twice|again)", r"hidden fee", r"unauthori[sz]ed", r"cancel\w*",
]
_POSITIVE = [
    r"thank\w*", r"appreciat\w*", r"great", r"excellent", r"happy", r"pleased", r"helpful", r"resolved",
    r"satisf(?:ied|actory)", r"love", r"wonderful", r"kind(?:ly)?", r"quick(?:ly)? (?:response|resolution)",
    r"good (?:service|job|experience)", r"glad", r"perfect", r"well done",
]
_NEGATION = re.compile(r"\b(?:not|no|never|dont|don't|didnt|didn't|isnt|isn't|wasnt|wasn't)\s+(?:\w+\s+)?$")


def _compile(patterns: list[str]) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")\b", re.IGNORECASE)


_RE = {
    "critical": _compile(_URGENT_CRITICAL),
    "high": _compile(_URGENT_HIGH),
    "low": _compile(_URGENT_LOW),
    "negative": _compile(_NEGATIVE),
    "positive": _compile(_POSITIVE),
}
_EXCLAIM = re.compile(r"!{1,}")
_CAPS = re.compile(r"\b[A-Z]{4,}\b")


def _hits(name: str, text: str) -> list[str]:
    out = []
    for m in _RE[name].finditer(text):
        # "not happy" is not a positive cue; a negated negative word is left as is (complaints say "not fair").
        if name == "positive" and _NEGATION.search(text[max(0, m.start() - 25) : m.start()].lower()):
            continue
        out.append(m.group(0).lower())
    return out


def _confidence(evidence: float, margin: float) -> float:
    """Map evidence strength to [0.5, 0.95]: little evidence stays close to a coin flip."""
    strength = 1.0 - math.exp(-0.6 * max(evidence, 0.0))
    return round(0.5 + 0.45 * strength * min(1.0, 0.5 + 0.5 * margin), 3)


def urgency(text: str) -> tuple[str, float, list[str]]:
    crit, high, low = _hits("critical", text), _hits("high", text), _hits("low", text)
    emphasis = len(_EXCLAIM.findall(text)) + len(_CAPS.findall(text))
    score = 3.0 * len(crit) + 1.0 * len(high) + 0.3 * min(emphasis, 5) - 1.5 * len(low)
    cues = crit + high + low
    if crit and score >= 3:
        label = "critical"
    elif score >= 2:
        label = "high"
    elif low and score < 0:
        label = "low"
    else:
        label = "normal"
    margin = min(1.0, abs(score - 1.5) / 3.0)
    evidence = len(cues) + 0.3 * min(emphasis, 5)
    # "normal" with no cue at all is a guess, not knowledge: low confidence (it was 0.80, issue 17).
    conf = _confidence(evidence, margin) if label != "normal" else round(0.4 + 0.2 * (1 - math.exp(-evidence)), 3)
    return label, conf, cues


def sentiment(text: str) -> tuple[str, float, list[str]]:
    neg, pos = _hits("negative", text), _hits("positive", text)
    emphasis = min(len(_EXCLAIM.findall(text)), 3)
    n_neg = len(neg) + 0.5 * emphasis * (1 if neg else 0)
    n_pos = len(pos)
    total = n_neg + n_pos
    if total == 0:
        return "neutral", 0.55, []
    balance = (n_pos - n_neg) / total
    if balance <= -0.2:
        label = "negative"
    elif balance >= 0.2:
        label = "positive"
    else:
        label = "neutral"
    conf = _confidence(total, abs(balance)) if label != "neutral" else round(0.5 + 0.1 * (1 - abs(balance)), 3)
    return label, conf, neg + pos
