"""Pattern-based extraction of a contract's key terms: parties, title, dates, renewal, notice, law.

Dates are returned as ISO strings when fully known. An expiration written as a term
("five (5) years from the Effective Date") is computed from the effective date.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from dateutil.relativedelta import relativedelta

from casemgr.ai.governing_law import governing_law as find_governing_law

_MONTHS = {m: i for i, m in enumerate(
    ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
     "november", "december"], start=1)}
_MON_ABBR = {m[:3]: i for m, i in _MONTHS.items()}
_MONTH_RE = (
    r"(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|"
    r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
)
_ORD = r"(?:\s?(?:s\s?t|n\s?d|r\s?d|t\s?h))?"  # PDF text splits ordinals: "1s t", "5t h"
DATE_RE = re.compile(
    rf"(?P<mdy>{_MONTH_RE}\s+(?P<d1>\d{{1,2}}){_ORD},?\s+(?P<y1>\d{{4}}))"
    rf"|(?P<dmy>(?P<d2>\d{{1,2}}){_ORD}\s+(?:day\s+of\s+)?(?P<m2>{_MONTH_RE}),?\s+(?:A\.D\.\s+)?(?P<y2>\d{{4}}))"
    rf"|(?P<iso>(?P<y3>\d{{4}})-(?P<m3>\d{{1,2}})-(?P<d3>\d{{1,2}}))"
    rf"|(?P<num>(?<![\d/-])(?P<m4>\d{{1,2}})(?P<sep>[/-])(?P<d4>\d{{1,2}})(?P=sep)(?P<y4>\d{{2,4}})(?![\d/-]))",
    re.IGNORECASE,
)
_UNITS = ["one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
_TEENS = ["ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"]
_TENS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def _number_words() -> dict[str, int]:
    """Written-out numbers as contracts spell them: 1-99 ("twenty-four", "twenty four") and the notice lengths
    counted in hundreds ("one hundred twenty", "one hundred and eighty")."""
    words = {w: i for i, w in enumerate(_UNITS, start=1)} | {w: i for i, w in enumerate(_TEENS, start=10)}
    for t, tens in enumerate(_TENS, start=2):
        words[tens] = t * 10
        for u, unit in enumerate(_UNITS, start=1):
            words[f"{tens}-{unit}"] = words[f"{tens} {unit}"] = t * 10 + u
    for rest in ("twenty", "eighty", "fifty", "sixty"):
        words[f"one hundred {rest}"] = words[f"one hundred and {rest}"] = 100 + words[rest]
    return words


_NUM_WORDS = _number_words()
# Built by structure, not as one alternative per word: 180 alternatives made every period regex ~40% slower.
_NUM = (rf"(?:\d+|one\s+hundred\s+(?:and\s+)?(?:twenty|eighty|fifty|sixty)|(?:{'|'.join(_TENS)})(?:[\s-](?:{'|'.join(_UNITS)}))?|"
        rf"{'|'.join(_TEENS)}|{'|'.join(_UNITS)})")
_QTY = rf"(?P<n>{_NUM})(?:\s*\((?P<d>\d+)\))?"


def _qty(m: re.Match[str]) -> int | None:
    """A quantity's value: the figures in brackets win ("twenty four (24)" is 24, not four)."""
    return int(m.group("d")) if m.group("d") else _to_int(m.group("n") or "")


def _to_int(s: str) -> int | None:
    s = " ".join(s.lower().split())
    if s.isdigit():
        return int(s)
    return _NUM_WORDS.get(s)


def _month(s: str) -> int | None:
    s = s.lower().rstrip(".")
    return _MONTHS.get(s) or _MON_ABBR.get(s[:3])


def _year(s: str) -> int:
    y = int(s)
    if y < 100:
        y += 2000 if y < 70 else 1900  # CUAD spans 1990s agreements to 2060s expiries
    return y


def parse_date(m: re.Match[str]) -> date | None:
    try:
        if m.group("mdy"):
            mon = _month(m.group("mdy").split()[0])
            return date(int(m.group("y1")), mon or 0, int(m.group("d1")))
        if m.group("dmy"):
            return date(int(m.group("y2")), _month(m.group("m2")) or 0, int(m.group("d2")))
        if m.group("iso"):
            return date(int(m.group("y3")), int(m.group("m3")), int(m.group("d3")))
        if m.group("num"):
            first, second = int(m.group("m4")), int(m.group("d4"))
            if first > 12 >= second:  # "29/3/18": day first, as non-US contracts write it
                first, second = second, first
            return date(_year(m.group("y4")), first, second)
    except ValueError:
        return None
    return None


def _dates_in(text: str) -> list[tuple[int, date]]:
    out = []
    for m in DATE_RE.finditer(text):
        d = parse_date(m)
        if d and 1950 <= d.year <= 2100:
            out.append((m.start(), d))
    return out


def _squash(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


_EFFECTIVE_CUES = re.compile(
    r"effective\s+(?:as\s+of|on|from|date)|\"effective date\"|commencement date|dated\s+(?:as\s+of\s+)?|"
    r"made\s+(?:and\s+entered\s+into\s+)?(?:as\s+of|on|this)|entered\s+into\s+(?:as\s+of|on|this)|as of",
    re.IGNORECASE,
)


_FOOTER_RE = re.compile(r"Source:\s[^\n]{0,160}?\d{1,2}/\d{1,2}/\d{2,4}", re.IGNORECASE)


def clean_contract(text: str) -> str:
    """Drop the EDGAR "Source: COMPANY, 10-K, 2/27/2020" footers: a filing date is not a contract date."""
    return _FOOTER_RE.sub(" ", text)


# 'shall commence as of April 1, 2018 (the "Effective Date")': the date the contract itself names the Effective Date
# wins over the date it was signed on, wherever the definition stands.
_DEFINED_EFFECTIVE = re.compile(r",?\s*\(\s*(?:the\s+|hereinafter\s+)?[\"“']?\s*effective\s+date\s*[\"”']?\s*\)", re.IGNORECASE)


# '"Effective Date" means February 1, 2011': the definition, quoted, with the date straight after it.
_EFFECTIVE_MEANS = re.compile(r"[\"“]effective\s+date[\"”]\s*(?:shall\s+mean|means|is|shall\s+be)\s+(?:the\s+)?", re.IGNORECASE)


def _defined_effective_date(flat: str) -> date | None:
    for m in _DEFINED_EFFECTIVE.finditer(flat):
        before = list(DATE_RE.finditer(flat, max(0, m.start() - 30), m.start()))
        if before and before[-1].end() >= m.start() - 1:
            return parse_date(before[-1])
    for m in _EFFECTIVE_MEANS.finditer(flat):
        after = _dates_in(flat[m.end() : m.end() + 40])
        if after and after[0][0] <= 3:
            return after[0][1]
    return None


# '"Effective Date" means the date of last signature': the later of the dates the signatories wrote by their names.
_LAST_SIGNATURE = re.compile(
    r"effective\s+date\W{0,3}\s*(?:means|shall\s+mean|is|shall\s+be)\s+the\s+(?:date\s+(?:of\s+(?:the\s+)?last\s+signature|"
    r"(?:on\s+)?which\s+(?:it|this\s+agreement)\s+(?:is|has\s+been)\s+(?:signed|executed)\s+by\s+(?:both|all|the\s+last))|"
    r"later\s+of\s+the\s+(?:dates|signature))", re.IGNORECASE)
_SIGNED = re.compile(r"\bBy\s*:|/s/", re.IGNORECASE)


def _last_signature_date(full: str) -> date | None:
    if not _LAST_SIGNATURE.search(full):
        return None
    signed = [d for m in _SIGNED.finditer(full) for _, d in _dates_in(full[m.end() : m.end() + 300])]
    return max(signed) if signed else None


def effective_and_agreement_date(text: str) -> tuple[date | None, date | None]:
    head = _squash(text[:6000])
    full = _squash(text)
    dates = _dates_in(head)
    if not dates:
        # Some contracts only carry the date in the signature block at the end.
        tail = _squash(text[-6000:])
        dates = [(len(head) + 1, d) for _, d in _dates_in(tail)[:1]]
    agreement = dates[0][1] if dates else None
    effective = _defined_effective_date(full) or _last_signature_date(full)
    for m in _EFFECTIVE_CUES.finditer(head) if effective is None else ():
        near = [d for pos, d in dates if m.start() <= pos <= m.end() + 80]
        if near:
            effective = near[0]
            break
    if effective is None:
        # A defined term "Effective Date" elsewhere ("The Effective Date shall be June 1, 2020").
        m = re.search(r"(?:effective|commencement) date[^.]{0,60}?(?:shall be|will be|means|is|of)\s+", full, re.IGNORECASE)
        if m:
            near = [d for pos, d in _dates_in(full[m.end() : m.end() + 60])]
            effective = near[0] if near else None
    return effective or agreement, agreement


_ORDINALS = {"first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
             "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "fifteenth": 15, "twentieth": 20,
             "twenty-fifth": 25, "thirtieth": 30}
# A sentence about the term. Sentences are split first (a period not followed by a digit, so "2.5 years" stays
# whole): one regex scanning "[^.]*keyword[^.]*" from every position was quadratic on long sentences (0.6 s/contract).
_TERM_WORD = re.compile(r"\b(?:term|expire\w*|in(?:to)? (?:full )?(?:force|effect)|remain (?:effective|in|valid)|continue|"
                        r"(?:be|remain) valid|effective (?:for|from|until|through)|terminate (?:on|upon|at)|"
                        r"(?:contract|service|services|"
                        r"license|engagement) period|termination date|expiration date|contract end)\b", re.IGNORECASE)
_SENTENCE_END = re.compile(r"\.(?!\d)")
_ANNIV_RE = re.compile(
    rf"(?:(?P<ord>{'|'.join(_ORDINALS)})|(?P<num>\d+)(?:st|nd|rd|th)|{_QTY}\s*\(?\d*\)?[\s-]*year)\s*(?:\(\d+(?:st|nd|rd|th)\)\s*)?anniversary",
    re.IGNORECASE,
)
_PERIOD_RE = re.compile(
    # "three (3) months prior written notice" or "within 30 days after" is a notice, not the term.
    rf"(?<![\w-]){_QTY}\s*(?:\(\d+\)\s*)?[\s-]*(?:full\s+)?(?:consecutive\s+)?(?:calendar\s+)?(?P<unit>year|month)s?\b"
    rf"(?!'?\s*(?:'s\s+|s'\s+)?(?:prior|before|notice|in\s+advance|written|after\s+(?:receipt|notice|the\s+date\s+of\s+notice)))"
    rf"(?:\s+(?:from|after|following|thereafter|later|commencing|beginning)|"
    rf"\s*\(|\s+period|\s+term|\s+duration|\.|,|;|\s+unless|\s+and|\s+or\b)",
    re.IGNORECASE,
)
_UNTIL_RE = re.compile(
    r"(?:expir\w*|terminat\w*|end(?:s|ing)?|conclud\w*|until|through(?:\s+to|\s+and\s+including)?|extended\s+to|to|"
    r"up\s+to\s+and\s+including)"
    # "expire at midnight on", "end at 11:59 p.m. (Eastern Time) on": the hour does not move the date
    r"(?:\s+date)?\s*:?\s+(?:at\s+(?:midnight|(?:11:59|5:00|12:00)\s*[ap]\.?m\.?)(?:\s*\([^)]{0,30}\))?\s+(?:on|of)\s+)?"
    r"(?:on\s+|upon\s+|at\s+|as\s+of\s+)?(?:the\s+)?"
    r"(?:date\s+of\s+)?",
    re.IGNORECASE,
)
_END_OF_YEAR_RE = re.compile(r"(?:until|through|to)\s+the\s+end\s+of\s+(?:(?P<year>\d{4})|the\s+(?:current\s+)?calendar\s+year)",
                             re.IGNORECASE)


_STRONG_TERM = re.compile(
    r"term of this agreement|initial term|\(the \W?term\W?\)|\bterm\W? (?:shall )?means?|this agreement (?:shall|will) "
    r"(?:commence|begin|continue|remain|expire|terminate|come into (?:force|effect)|"
    r"be (?:effective|in effect|in full force|for))|term of the agreement|"
    r"termination date|expiration date|contract end|(?:contract|service|services|license|engagement)\s+(?:period|term)\W?\s+"
    r"(?:shall\s+)?means?",
    re.IGNORECASE,
)


_DOTTED_DAY = re.compile(r"\b((?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)[a-z]*\.?\s+\d{1,2})\.\s+(\d{4})\b")


# "2. Term. Three (3) years from the Effective Date.": the heading is what says the sentence after it is the term.
_TERM_HEADING = re.compile(r"\s*(?:term|duration|term of (?:this )?agreement|term and termination)\s*", re.IGNORECASE)


def _with_headings(pieces: list[str]) -> list[str]:
    out: list[str] = []
    for i, x in enumerate(pieces):
        if i and len(pieces[i - 1]) < 30 and _TERM_HEADING.fullmatch(pieces[i - 1]):
            x = f"{pieces[i - 1].strip()}: {x.strip()}"
        out.append(x)
    return out


def expiration_date(text: str, effective: date | None) -> str | None:
    """Strong "term of this agreement" sentences first, then any term-like sentence."""
    flat = _DOTTED_DAY.sub(r"\1, \2", _squash(text)[:300000])  # "until March 18. 2021": a typo, not a sentence end
    sentences = [f"{x}." for x in _with_headings(_SENTENCE_END.split(flat)) if _TERM_WORD.search(x)]
    strong = [x for x in sentences if _STRONG_TERM.search(x)]
    return (_explicit_end(strong) or _expiration_from(strong, effective) or _explicit_end(sentences)
            or _expiration_from(sentences, effective))


# "expire upon the later of (a) the end of the 2022/23 season and (b) the last day in February, 2023": a month's last
# day is a date too, and in a "later of" list it is the one fixed date CUAD records.
_MONTH_END = re.compile(rf"\blast\s+day\s+(?:of|in)\s+(?:the\s+month\s+of\s+)?(?P<mon>{_MONTH_RE}),?\s+(?P<year>\d{{4}})\b",
                        re.IGNORECASE)


def _month_end(m: re.Match[str]) -> date | None:
    mon = _month(m.group("mon"))
    return date(int(m.group("year")), mon, 1) + relativedelta(months=1, days=-1) if mon else None


def _explicit_end(sentences: list[str]) -> str | None:
    for sent in sentences:
        for u in _UNTIL_RE.finditer(sent):
            ds = _dates_in(sent[u.end() : u.end() + 40])
            if ds and ds[0][0] <= 3:
                return ds[0][1].isoformat()
            last = _MONTH_END.search(sent, u.end(), u.end() + 150)
            if last and (last.start() - u.end() <= 3 or re.match(r"(?:the\s+)?later\s+of", sent[u.end():], re.IGNORECASE)):
                got = _month_end(last)
                if got:
                    return got.isoformat()
    return None


# How the period in a term sentence is tied to the agreement's own duration. "for a period of three (3) months
# following the expiration" (a tail obligation), a warranty period or a notice is not the term.
_TIED_BEFORE = re.compile(r"(?:initial\s+term|term\s+of\s+this\s+agreement|this\s+agreement|the\s+term|in\s+(?:full\s+)?"
                          r"(?:force|effect)(?:\s+and\s+effect)?|continue|remain\s+\w+|expire|duration|be\s+for|"
                          r"have\s+an?\s+(?:initial\s+)?term)[^.;]{0,60}?(?:for|of)\s+(?:an?\s+(?:initial\s+)?(?:period|term)\s+of\s+|"
                          r"(?:a|the)\s+(?:further\s+)?)?$"
                          # "The Term shall be three (3) years", "the initial term is five years"
                          r"|(?:the\s+|initial\s+)term\s+(?:of\s+this\s+agreement\s+)?(?:shall|will)\s+be\s+$"
                          r"|(?:the\s+|initial\s+)term\s+(?:of\s+this\s+agreement\s+)?is\s+$", re.IGNORECASE)
_TAIL_AFTER = re.compile(r"^[^.;]{0,40}?(?:following|after|from)\s+(?:the\s+|its\s+|such\s+|any\s+)?(?:expir|terminat|end\s+of)|"
                         r"^[^.;]{0,20}?"
                         r"(?:prior|before|notice|written)", re.IGNORECASE)
_NOT_TERM_SENTENCE = re.compile(r"warrant|confidential|non-?compet|solicit|indemnif|insurance|records|audit|"
                                r"renew|extend|extension", re.IGNORECASE)


def _term_period(sent: str) -> tuple[int, relativedelta] | None:
    """The best-tied period in a sentence, with a score (higher is surer), or None."""
    best: tuple[int, relativedelta] | None = None
    for p in _PERIOD_RE.finditer(sent):
        n = _qty(p)
        if not n or n > 100 or _TAIL_AFTER.search(sent[p.end("unit") : p.end("unit") + 70]):
            continue
        score = 2 if _TIED_BEFORE.search(sent[max(0, p.start() - 140) : p.start()]) else 1
        if _NOT_TERM_SENTENCE.search(sent[: p.start()]):
            score -= 1
        delta = relativedelta(years=n) if p.group("unit").lower() == "year" else relativedelta(months=n)
        if best is None or score > best[0]:
            best = (score, delta)
    return best


# "shall commence on April 1, 1999 and shall continue for six (6) months", "in full force and effect commencing on
# January 2, 2020": the sentence says when the term starts, which may differ from the signing or effective date.
_START_CUE = re.compile(r"(?:commenc\w*|begin\w*|start\w*|come\s+into\s+(?:force|effect)|effective)\s+(?:on\s+|upon\s+|"
                        r"as\s+of\s+|from\s+|with\s+effect\s+from\s+)?(?:the\s+)?", re.IGNORECASE)


def _term_start(sent: str) -> date | None:
    for m in _START_CUE.finditer(sent):
        ds = _dates_in(sent[m.end() : m.end() + 40])
        if ds and ds[0][0] <= 3:
            return ds[0][1]
    return None


def _expiration_from(sentences: list[str], effective: date | None) -> str | None:
    perpetual = None
    candidates: list[tuple[int, int, date]] = []
    for i, sent in enumerate(sentences):
        e = _END_OF_YEAR_RE.search(sent)
        if e and (e.group("year") or effective):
            return date(int(e.group("year")) if e.group("year") else effective.year, 12, 31).isoformat()  # type: ignore[union-attr]
        start = _term_start(sent) or effective
        if start is None:
            continue
        a = _ANNIV_RE.search(sent)
        if a:
            n = _ORDINALS.get((a.group("ord") or "").lower()) or _to_int(a.group("num") or a.group("n") or "")
            if n:
                candidates.append((2, -i, start + relativedelta(years=n)))
        if re.search(r"\b(?:term|effect|force|expire|continue|duration|valid|effective\s+for)\b", sent, re.IGNORECASE):
            got = _term_period(sent)
            if got and got[0] > 0:
                candidates.append((got[0], -i, start + got[1]))
        if perpetual is None and re.search(r"\bperpetu\w+|\bin perpetuity|indefinite", sent, re.IGNORECASE):
            perpetual = "perpetual"
    if candidates:  # the surest tie wins; among equals, the first sentence
        return max(candidates)[2].isoformat()
    return perpetual


# Renewal, as CUAD answers it: "successive 1 year" (renews by itself, again and again), "2 years" (one renewal, by
# option or agreement), "perpetual" (continues until terminated). Read from sentences that speak of renewing.
_RENEW_WORD = re.compile(r"\b(?:renew\w*|extend\w*|extension|prolong\w*|year[- ]to[- ]year|month[- ]to[- ]month)\b",
                         re.IGNORECASE)
# CUAD writes "successive" only for a renewal that repeats: the word itself, or renewals "each year"; an automatic
# renewal "for an additional two year period" is "2 years".
_REPEATS = re.compile(r"successive|consecutive|\beach\b|one\s+or\s+more|\bbasis\b|year[- ]to[- ]year|evergreen|"
                      r"from\s+time\s+to\s+time|again|succeeding|(?:year|month)\)?\s+(?:periods|terms)\b", re.IGNORECASE)
_YEARLY = re.compile(r"year[- ]to[- ]year|from\s+year\s+to\s+year|(?:renew\w*|extend\w*)\s+(?:\w+\s+){0,3}?"
                     r"(?:annually|every\s+year|each\s+year|for\s+annual\s+(?:periods|terms)|on\s+an?\s+annual\s+basis)",
                     re.IGNORECASE)
_MONTHLY = re.compile(r"month[- ]to[- ]month|(?:renew\w*|extend\w*)\s+(?:\w+\s+){0,3}?(?:for\s+)?monthly\s+"
                      r"(?:periods|terms|basis)", re.IGNORECASE)
_RENEW_PERIOD = re.compile(
    rf"(?:(?<![\w-]){_QTY}[\s~-]*(?:\(\d+\)\s*)?|(?P<one>(?<!half\s)an?\s+(?=(?:additional\s+|further\s+)?(?:year|month)\b)|"
    rf"(?<=another\s)(?=(?:year|month)\b)))"  # "renewed for another year"
    rf"(?:calendar\s+|consecutive\s+|additional\s+|further\s+|contract\s+)?"
    rf"(?P<unit>year|month|week)s?\b(?!\s*(?:'s\s+|s'\s+)?(?:prior|before|notice|in\s+advance|written|after\s+(?:receipt|notice)))",
    re.IGNORECASE,
)
# "shall thereafter continue for successive one-year terms": a renewal without the word, told from the initial term
# ("continue for a period of five years") by the "successive"/"additional"/"further" before the period.
_CONTINUES_FOR_MORE = (r"\bcontinu\w*\b[^.;,()]{0,40}?\b(?:for|by)\s+(?:the\s+)?(?:an?\s+)?(?:(?:additional|successive|further|"
                       r"subsequent|renewal|consecutive|succeeding)\s+)+(?:(?:terms?|periods?)\s+of\s+)?")
_CONTINUES_RE = re.compile(_CONTINUES_FOR_MORE, re.IGNORECASE)
_RENEW_WITH_PERIOD = re.compile(
    r"(?:renew\w*|extend\w*|extension\s+(?:period|term)s?|prolong\w*)\b[^.;,()]{0,40}?(?:for|by|on)\s+(?:the\s+|up\s+to\s+)?(?:"
    r"(?:additional|successive|further|subsequent|renewal|consecutive|succeeding|like|similar|another|each)\s+)*"
    r"(?:(?:terms?|periods?)\s+of\s+)?|" + _CONTINUES_FOR_MORE +
    # "... on each anniversary, for a renewal term of one year": the renewal's own length, named as such
    r"|\b(?:renewal|extension)\s+(?:term|period)s?\s+(?:(?:of|shall\s+be|will\s+be|is)\s+)+", re.IGNORECASE,
)
# "extended warranty coverage for an additional twenty-four (24) months", an insurance policy renewed each year:
# something else than the agreement is extended.
_NOT_AGREEMENT_RENEWAL = re.compile(r"\bwarrant(?:y|ies)\b|\binsurance\b|\bcoverage\b", re.IGNORECASE)
# "renew for successive terms of the same duration", "for a like term": as long as the initial term.
_SAME_AS_INITIAL = re.compile(r"(?:renew\w*|extend\w*)\b[^.;]{0,60}?\b(?:(?:same|equal|identical|like)\s+(?:duration|length|"
                              r"period|term)|like\s+(?:terms|periods)|equal\s+(?:in\s+length\s+)?to\s+the\s+(?:initial|original)\s+"
                              r"term)", re.IGNORECASE)
_NOTICE_CUE = re.compile(r"prior|notice|before", re.IGNORECASE)
_OPEN_ENDED = re.compile(
    r"(?:renew\w*|continu\w*|remain\w*)\s+(?:\w+\s+){0,6}?(?:for\s+an\s+unlimited\s+period|indefinitely|"
    r"until\s+(?:it\s+is\s+)?terminated|in\s+perpetuity|perpetually)"
    # "for an initial term of one (1) year (Initial Term) and indefinitely after that until terminated"
    r"|\bindefinitely\s+(?:after\s+that|thereafter)|\bthereafter\s+indefinitely",
    re.IGNORECASE,
)


def renewal_term(text: str) -> str | None:
    """ "successive N units" (renews by itself), "N units" (a renewal the parties may choose), "perpetual", or None."""
    flat = _squash(text)
    for sent in _SENTENCE_END.split(flat):
        if (not (_RENEW_WORD.search(sent) or _OPEN_ENDED.search(sent) or _CONTINUES_RE.search(sent))
                or _NOT_AGREEMENT_RENEWAL.search(sent)):
            continue
        if _YEARLY.search(sent):
            return "successive 1 year"
        if _MONTHLY.search(sent):
            return "successive 1 month"
        for lead in _RENEW_WITH_PERIOD.finditer(sent):
            p = _RENEW_PERIOD.match(sent, lead.end())
            if p is None:  # "renew for the same duration of two (2) years": a few words on, unless a notice comes first
                nxt = _RENEW_PERIOD.search(sent, lead.end(), lead.end() + 40)
                p = nxt if nxt and not _NOTICE_CUE.search(sent, lead.end(), nxt.start()) else None
            n = (1 if p.group("one") is not None else _qty(p)) if p else None
            if p and n:
                unit = p.group("unit").lower()
                prefix = "successive " if _REPEATS.search(sent) else ""
                return f"{prefix}{n} {unit}{'s' if n != 1 else ''}"
        if _SAME_AS_INITIAL.search(sent):
            initial = _initial_term(flat)
            if initial:
                return f"{'successive ' if _REPEATS.search(sent) else ''}{initial}"
        if _OPEN_ENDED.search(sent) and re.search(r"automatic|thereafter|after\s+that|renew", sent, re.IGNORECASE):
            return "perpetual"
    return None


def _initial_term(flat: str) -> str | None:
    """The initial term's length as "N units", read from the strong term sentences the expiry uses."""
    for sent in _SENTENCE_END.split(flat):
        if not (_TERM_WORD.search(sent) and _STRONG_TERM.search(sent)) or _RENEW_WORD.search(sent):
            continue
        got = _term_period(sent)
        if got and got[0] > 1:  # tied to the agreement's own duration
            delta = got[1]
            n, unit = (delta.years, "year") if delta.years else (delta.months, "month")
            return f"{n} {unit}{'s' if n != 1 else ''}"
    return None


_NOTICE_QTY = re.compile(
    rf"(?<![\w-]){_QTY}[\s-]*(?:\(\d+\)\s*)?(?:calendar\s+|business\s+|working\s+)?(?P<unit>day|week|month|year)s?'?",
    re.IGNORECASE,
)
_NOTICE_AFTER = re.compile(
    r"\s*(?:\(\w+\)\s*)?(?:prior|before|in\s+advance|(?:advance\s+|prior\s+)?(?:written\s+)?notice|written)", re.IGNORECASE
)
_NOTICE_BEFORE = re.compile(r"(?:at\s+least|not\s+less\s+than|no\s+less\s+than|no\s+later\s+than|minimum\s+of|upon|"
                            r"within|giving|with)\s*$", re.IGNORECASE)
_NOTICE_WORD = re.compile(r"notice|notif|writ(?:ten|ing)", re.IGNORECASE)  # "cancelled in writing 30 days prior"
_RENEWAL_CONTEXT = re.compile(
    r"(?:renew\w*|extend\w*|extension)[^.]{0,60}(?:agreement|term|contract)|(?:agreement|term|contract)[^.]{0,60}"
    r"(?:renew\w*|extend\w*)|not\s+to\s+renew|non-?\s?renewal|month[- ]to[- ]month|evergreen",
    re.IGNORECASE,
)
_EXPIRY_CONTEXT = re.compile(r"^[^.]{0,60}?(?:prior\s+to|before|preceding)\s+(?:the\s+)?(?:date\s+of\s+)?(?:expir|end\s+of|"
                             r"anniversary|natural\s+expir|termination\s+date)", re.IGNORECASE)
_NOT_RENEWAL_NOTICE = re.compile(r"breach|default|cure|insurance|polic(?:y|ies)|sublicen", re.IGNORECASE)


def notice_period(text: str) -> str | None:
    """Notice needed to stop a renewal: the first notice period in a sentence about renewing, else about expiry."""
    sentences = [x for x in _SENTENCE_END.split(_squash(text)) if _NOTICE_WORD.search(x)]
    sentences = [x for x in sentences if not _NOT_RENEWAL_NOTICE.search(x)]
    for about_renewal in (True, False):
        for sent in sentences:
            if about_renewal and not _RENEWAL_CONTEXT.search(sent):
                continue
            for q in _NOTICE_QTY.finditer(sent):
                if not about_renewal and not _EXPIRY_CONTEXT.match(sent, q.end()):
                    continue
                if (_NOTICE_AFTER.match(sent, q.end()) or _NOTICE_BEFORE.search(sent, max(0, q.start() - 40), q.start())):
                    n = _qty(q)
                    if n:
                        unit = q.group("unit").lower()
                        return f"{n} {unit}{'s' if n != 1 else ''}"
    return None


def governing_law(text: str) -> str | None:
    return find_governing_law(clean_contract(text))


# The title: an upper-case heading near the top ("EXCLUSIVE DISTRIBUTOR AGREEMENT"), else a short title-case line,
# else the name the preamble uses ("This Supply Agreement (the "Agreement")..."). Filing furniture in front of it
# ("Exhibit 10.1", "EXECUTION VERSION", "ATTACHMENT A", "THIS") is not part of it.
_DOC_NOUN = (r"AGREEMENT|CONTRACT|LICEN[CS]E|LEASE|ADDENDUM|AMENDMENT|ENDORSEMENT|CERTIFICATE|GUARANTEES?|GUARANTY|"
             r"MEMORANDUM OF UNDERSTANDING|ARRANGEMENT|TERMS AND CONDITIONS|UNDERTAKING|DEED")
_TITLE_STOP = {"EXHIBIT", "ATTACHMENT", "APPENDIX", "SCHEDULE", "ANNEX", "VERSION", "COPY", "CONFIDENTIAL", "REQUESTED",
               "THIS", "DRAFT", "FINAL", "EXECUTION", "TRANSLATION", "INC", "LLC", "LTD", "CORP", "CORPORATION", "COMPANY",
               "LIMITED", "PLC", "GMBH", "AG", "BY", "BETWEEN", "DISCLOSED", "REDACTED", "OMITTED", "OMISSIONS"}
_TITLE_LABELLED = {"EXHIBIT", "ATTACHMENT", "APPENDIX", "SCHEDULE", "ANNEX"}  # "EXHIBIT C SAMPLE OF ...": C is a label
_TITLE_UPPER_WORD = re.compile(r"[A-Z][A-Z&'’/®-]*|&|\([A-Z0-9 ]+\)")
_TITLE_WORD = r"(?:[A-Z][\w&.'’/-]*|of|and|for|the|to|in|on|&)"
_TITLE_LINE = re.compile(rf"^((?:{_TITLE_WORD}\s+){{0,10}}?(?:{_DOC_NOUN.title()}|{_DOC_NOUN.lower()}\b))\s*$".replace(
    "Of Understanding", "of Understanding").replace("And Conditions", "and Conditions"))
_LEAD_TITLE = re.compile(rf"^(?:Exhibit\s+[\w.()-]+\s+)?((?:[A-Z][\w&'’/-]*\s+(?:(?:of|and|for|to)\s+)?){{1,8}}?"
                         rf"(?:{_DOC_NOUN.title()}))\b")
_THIS_TITLE = re.compile(rf"\bTh(?:is|e)\s+((?:[A-Z][\w&'’/-]*\s+(?:(?:of|and|for|to)\s+)?){{1,8}}?(?:{_DOC_NOUN.title()}))\b")
_NOT_A_TITLE = re.compile(r"^(?:THE|THIS|SUCH|ANY|EACH|SAID|ENTIRE|TO|OF|IN|BY|UNDER|AND)\b|\b(?:SECTION|ARTICLE|PAGE|HEREBY|"
                          r"HEREUNDER|WHEREAS|WITNESS)\b")
_TYPES = ["distribution", "distributor", "license", "supply", "service", "services", "consulting", "franchise",
          "joint venture", "development", "manufacturing", "marketing", "reseller", "sponsorship", "endorsement",
          "hosting", "maintenance", "outsourcing", "agency", "collaboration", "strategic alliance", "co-branding",
          "transportation", "ip", "intellectual property", "non-compete", "promotion", "affiliate", "lease"]


def _title_kind(title: str) -> dict[str, str | None]:
    title = _squash(title)
    low = title.lower()
    return {"title": title, "type": next((t for t in _TYPES if t in low), None)}


def _upper_title(flat: str) -> str | None:
    """The upper-case heading that ends in an agreement noun, read backwards from the noun."""
    for nouns in ("AGREEMENT|CONTRACT", _DOC_NOUN):
        for m in re.finditer(rf"(?<![A-Za-z])(?:{nouns})(?![A-Za-z])", flat):
            words = flat[max(0, m.start() - 200):m.start()].split()
            kept: list[str] = []
            for i in range(len(words) - 1, -1, -1):
                w = words[i]
                numbered = w.isdigit() and i > 0 and words[i - 1] == "NO."  # "AMENDMENT NO. 3 TO ..."
                if w == "NO." or numbered or (_TITLE_UPPER_WORD.fullmatch(w) and w.strip("()") not in _TITLE_STOP):
                    kept.append(w)
                    continue
                if w.upper() in _TITLE_LABELLED and kept and len(kept[-1]) <= 3:
                    kept.pop()
                break
            while kept and kept[-1] in {"THE", "AND", "OF", "TO", "&"}:
                kept.pop()
            if kept and len(kept) <= 12:
                return " ".join([*reversed(kept), m.group(0)])
    return None


def agreement_title(text: str) -> dict[str, str | None]:
    head = text[:4000]
    flat = _squash(head)
    title = _upper_title(flat)
    if title:
        return _title_kind(title)
    for line in head.splitlines()[:60]:
        m = _TITLE_LINE.match(_squash(line).strip(" *-\"'"))
        if m and not _NOT_A_TITLE.search(m.group(1).upper()):
            return _title_kind(m.group(1))
    for pattern in (_LEAD_TITLE, _THIS_TITLE):
        m = pattern.search(flat)
        if m and not _NOT_A_TITLE.search(m.group(1).upper()):
            return _title_kind(m.group(1))
    return {"title": None, "type": None}


# Parties are read from the preamble ("... by and between A, a Delaware corporation ("A"), and B ..."): names that
# end in a company form, and capitalised names that a defined alias ("Licensee") follows. Aliases and defined terms
# themselves are not parties.
_PREAMBLE_START = re.compile(
    r"\b(?:by\s+and\s+(?:between|among)|between|among|entered\s+into\s+by|parties\s*:|party\s+a\s*:)\s*:?", re.IGNORECASE
)
_PREAMBLE_END = re.compile(r"\b(?:WHEREAS|RECITALS|W\s?I\s?T\s?N\s?E\s?S\s?S\s?E\s?T\s?H|NOW,?\s+THEREFORE|BACKGROUND|"
                           r"PREAMBLE|IN\s+CONSIDERATION|Recitals|Whereas)\b")
_ORG_FORM = (r"(?:Inc|INC|Incorporated|LLC|L\.L\.C|Ltd|LTD|Limited|LIMITED|Corp|CORP|Corporation|CORPORATION|Company|"
             r"COMPANY|Co|CO|plc|PLC|N\.V|B\.V|GmbH|AG|S\.A|SA|S\.p\.A|SpA|LP|L\.P|LLP|L\.L\.P|Pty|PTY|Trust|TRUST|"
             r"AB|ASA|A/S|Oy|KG|S\.A\.S|S\.L|Pte|Bhd|N\.A)")
_NAME_WORD = r"(?:[A-Z0-9][\w&.'’/-]*|&|\([A-Z]{2,5}\))"
_FIRST_WORD = r"(?:[A-Z]|\d+[A-Za-z])[\w&.'’/-]*"
_NAME_LINK = r"(?:of|and|for|de|du|der|la|le|the|di|del|y|&)"
_NAME_RUN = rf"{_FIRST_WORD}(?:,?\s+(?:{_NAME_LINK}\s+)*{_NAME_WORD}){{0,9}}"
_ORG_NAME_RE = re.compile(rf"(?<![\w\"“'])({_FIRST_WORD}(?:\s+(?:{_NAME_LINK}\s+)*{_NAME_WORD}){{0,8}}?,?\s+{_ORG_FORM}\b\.?"
                          rf"(?:,?\s+{_ORG_FORM}\b\.?)?)")
_ALIASED_RE = re.compile(
    rf"(?<![\w\"“'])(?P<name>{_NAME_RUN})\s*(?:,\s*(?:an?|the)\s[^()\"“]{{0,160}}?)?\s*,?\s*\(\s*(?:hereinafter\s+|herein\s+)?"
    r"(?:(?:referred\s+to\s+|called\s+)?as\s+)?(?:the\s+)?[\"“'‘](?P<alias>[^\"”'’()]{1,40})[\"”'’]"
)
_NOT_A_NAME = re.compile(
    r"^(?:this|(?-i:the)|such|each|any|all|said|party|parties|agreement|effective|exhibit|schedule|section|article|whereas|"
    r"dated|date|between|among|and|by|from|company|corporation|delaware|nevada|new york|california)\b",
    re.IGNORECASE,
)
# Addresses, dates, signature blocks, regulators and headings look like capitalised names too.
_NOT_A_PARTY = re.compile(
    r"\b(?:street|st\.|road|rd\.|avenue|ave\.?|suite|drive|blvd|boulevard|floor|p\.?o\.? box|highway|parkway|"
    r"signatory|authorized|title|name|agreement|page|section|article|exhibit|schedule|commission|authority|court|"
    r"act|january|february|march|april|may|june|july|august|september|october|november|december)\b|\d{4,}",
    re.IGNORECASE,
)

# Defined terms that name a thing, not a party: the name before them is not a party either.
_NOT_AN_ALIAS = re.compile(
    r"(?:agreement|effective date|term|territory|products?|services?|plan|program|property|premises|work|project|"
    r"license|licensed \w+|marks?|trademarks?|patents?|software|fee|affiliates?|closing|transaction)$",
    re.IGNORECASE,
)

# "a New Jersey Corporation", "organized under the laws of the People's Republic of China", "located in Madrid".
_DESCRIPTOR_BEFORE = re.compile(r"(?:(?<![/\w])an?|laws\s+of(?:\s+the)?|located\s+(?:at|in)|offices?\s+(?:at|in)|in)\s*$",
                                re.IGNORECASE)
_PLACE = re.compile(
    r"(?:\b(?:China|Japan|Germany|England|Cyprus|Canada|Taiwan|ROC|Romania|Spain|France|Italy|India|Israel|Korea|"
    r"Singapore|Switzerland|Netherlands|Ireland|Australia|Brazil|Mexico|Kingdom|USA|U\.S\.A\.?|Madrid|London|Paris|"
    r"Beijing|Shanghai|Shenzhen|Hong Kong|Toronto|Vancouver)|\b[A-Z]\d[A-Z] ?\d[A-Z]\d|\b[A-Z]{1,2}\d{1,2}[A-Z]? ?\d[A-Z]{2}|"
    r"(?:\b\d+(?:\.\d+)?\b.*){2,})$"
)


def _clean_name(name: str) -> str:
    name = re.sub(r"^(?:(?:by\s+and\s+)?(?:between|among)|and|party\s+[ab]|parties|\d+[.)]?)\s*[:,]?\s+", "",
                  name.strip(" ,.:;"), flags=re.IGNORECASE)
    name = name.strip(" ,:;\"'“”")
    # "Fort Stockton, Texas and STW Resources Holding Corp": a single word joined by "and" belongs to the name before.
    return re.sub(r"^[A-Z][\w.-]*\s+and\s+(?=\S+\s+\S)", "", name, flags=re.IGNORECASE)


def _name_key(name: str) -> str:
    low = re.sub(r"[^a-z0-9 ]", " ", name.lower())
    return " ".join(w for w in low.split() if w not in {"inc", "llc", "l", "c", "ltd", "limited", "corp", "corporation",
                                                     "co", "company", "plc", "the"})


def parties(text: str) -> list[str]:
    """The contracting parties' names from the preamble (or the title page when there is none)."""
    head = _squash(text[:8000])
    m = _PREAMBLE_START.search(head[:5000])
    if m:
        rest = head[m.end():]
        stop = _PREAMBLE_END.search(rest, 20)
        segment = rest[: min(stop.start() if stop else 1500, 1500)]
    else:
        segment = head[:1500]
    candidates: list[tuple[int, str]] = []
    for om in _ORG_NAME_RE.finditer(segment):
        candidates.append((om.start(), om.group(1)))
    for am in _ALIASED_RE.finditer(segment):
        if not _NOT_AN_ALIAS.match(am.group("alias").strip()):
            candidates.append((am.start("name"), am.group("name")))
    found: list[str] = []
    keys: list[str] = []
    for start, raw in sorted(candidates):
        name = _clean_name(raw)
        junk = list(_NOT_A_PARTY.finditer(name))
        at_start = not junk
        if junk:  # "..., Morton Grove, IL 60053 and Ludmila Smolyansky": the name is what follows the address
            after = re.match(r"[\s,;:]*and\s+(.+)", name[junk[-1].end():])
            name = _clean_name(after.group(1)) if after else ""
        if (at_start and _DESCRIPTOR_BEFORE.search(segment[max(0, start - 40):start])) or _PLACE.search(name):
            continue
        key = _name_key(name)
        if (not (2 < len(name) <= 120) or not key or _NOT_A_NAME.match(name) or _NOT_A_PARTY.search(name)
                or len(name.split()) > 12):
            continue
        if any(key == k or (len(k) > 3 and (key in k or k in key)) for k in keys):
            continue
        found.append(name)
        keys.append(key)
    return found[:8]


def extract_fields(text: str) -> dict[str, Any]:
    text = clean_contract(text)
    eff, agr = effective_and_agreement_date(text)
    return {
        "parties": parties(text),
        "agreement": agreement_title(text),
        "agreement_date": agr.isoformat() if agr else None,
        "effective_date": eff.isoformat() if eff else None,
        "expiration_date": expiration_date(text, eff),
        "renewal_term": renewal_term(text),
        "notice_period_to_terminate_renewal": notice_period(text),
        "governing_law": governing_law(text),
    }


def _gold_date(answer: str) -> str | None:
    m = re.fullmatch(r"\s*(\d{1,2})/(\d{1,2})/(\d{2,4})\s*", answer or "")
    if not m:
        return None
    try:
        return date(_year(m.group(3)), int(m.group(1)), int(m.group(2))).isoformat()
    except ValueError:
        return None


def date_accuracy(docs: Sequence[Any], extractor: Callable[[str], dict[str, Any]], data_dir: str | None = None) -> dict[str, Any]:
    """Share of contracts whose fully specified CUAD date answer we reproduce exactly (ISO); "overall"
    pools the three date fields. Governing law is scored as a case-insensitive containment match."""

    pairs = {"agreement_date": "Agreement Date-Answer", "effective_date": "Effective Date-Answer",
             "expiration_date": "Expiration Date-Answer"}
    hits = dict.fromkeys(pairs, 0)
    totals = dict.fromkeys(pairs, 0)
    law_hits = law_total = 0
    for d in docs:
        text = "\n\n".join(d.chunks)
        got = extractor(text)
        gold_law = (d.answers.get("Governing Law-Answer") or "").strip().lower()
        if gold_law and gold_law != "[]":
            law_total += 1
            law = (got.get("governing_law") or "").lower()
            law_hits += int(bool(law) and (law in gold_law or gold_law in law))
        for field, col in pairs.items():
            gold = _gold_date(d.answers.get(col, ""))
            if field == "effective_date" and gold is None:
                gold = _gold_date(d.answers.get("Agreement Date-Answer", "")) if not d.answers.get(col) else None
            if gold is None:
                continue
            totals[field] += 1
            hits[field] += int(got.get(field) == gold)
    out: dict[str, Any] = {f: {"n": totals[f], "accuracy": round(hits[f] / totals[f], 4) if totals[f] else None} for f in pairs}
    n_all = sum(totals.values())
    out["overall"] = round(sum(hits.values()) / n_all, 4) if n_all else None
    out["governing_law"] = {"n": law_total, "accuracy": round(law_hits / law_total, 4) if law_total else None}
    return out


def _gold_parties(answer: str) -> list[str]:
    # CUAD: 'Bioeq IP, AG ("Bioeq"); Coherus BioSciences, Inc. ("Licensee")' -> the names before their aliases.
    names = [re.split(r"\(|[\"“]", item)[0].strip(" ,.") for item in (answer or "").split(";")]
    return [k for k in (_name_key(n) for n in names) if k]


def party_accuracy(docs: Sequence[Any], extractor: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """Recall and precision of extracted party names against CUAD's Parties answers. A name matches when one
    contains the other after dropping case, punctuation and company forms ("Acme, Inc." = "ACME")."""

    def same(a: str, b: str) -> bool:
        return a == b or (len(a) > 3 and len(b) > 3 and (a in b or b in a))

    gold_n = gold_hit = got_n = got_hit = complete = n = 0
    for d in docs:
        gold = _gold_parties(d.answers.get("Parties-Answer", ""))
        if not gold:
            continue
        got = [k for k in (_name_key(p) for p in extractor("\n\n".join(d.chunks))["parties"]) if k]
        n += 1
        found = sum(any(same(g, x) for x in got) for g in gold)
        gold_n, gold_hit, complete = gold_n + len(gold), gold_hit + found, complete + int(found == len(gold))
        got_n, got_hit = got_n + len(got), got_hit + sum(any(same(x, g) for g in gold) for x in got)
    return {"n": n, "recall": round(gold_hit / gold_n, 4) if gold_n else None,
            "precision": round(got_hit / got_n, 4) if got_n else None,
            "all_parties_found": round(complete / n, 4) if n else None}


def _term_value(s: str) -> str:
    # CUAD writes "successive 1 year", "three (3) years", "Perpetual": compare number, unit and "successive".
    s = (s or "").lower().replace("successine", "successive")
    s = re.sub(rf"\b({_NUM})\b(?:\s*\(\d+\))?", lambda m: str(_to_int(m.group(1)) or m.group(1)), s)
    s = re.sub(r"\b(year|month|day|week)s\b", r"\1", s)
    # "12 months" and "1 year" are one length, and CUAD writes either for "twelve (12) months" (3 answers say
    # "12 months", others "1 year" for a twelve-month text): whole years are compared as years.
    s = re.sub(r"\b(\d+) month\b", lambda m: f"{int(m.group(1)) // 12} year" if int(m.group(1)) % 12 == 0 else m.group(0), s)
    return " ".join(s.split())


def renewal_accuracy(docs: Sequence[Any], extractor: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """Renewal term and notice period against CUAD's answers: share of answered contracts we reproduce (number,
    unit and "successive"), and how many unanswered contracts we gave a value anyway."""
    fields = {"renewal_term": "Renewal Term-Answer",
              "notice_period_to_terminate_renewal": "Notice Period To Terminate Renewal- Answer"}
    out: dict[str, Any] = {}
    got_all = [extractor("\n\n".join(d.chunks)) for d in docs]
    for field, col in fields.items():
        n = hits = extra = 0
        for d, got in zip(docs, got_all, strict=True):
            gold = (d.answers.get(col) or "").strip()
            value = got.get(field)
            if gold and gold != "[]":
                n += 1
                hits += any(_term_value(value or "") == _term_value(g) for g in gold.split(";"))
            elif value:
                extra += 1
        out[field] = {"n": n, "accuracy": round(hits / n, 4) if n else None, "given_without_answer": extra}
    return out


def title_accuracy(docs: Sequence[Any], extractor: Callable[[str], dict[str, Any]]) -> dict[str, Any]:
    """Share of contracts whose title matches CUAD's Document Name answer (case and punctuation aside)."""

    def norm(x: str | None) -> str:
        return " ".join(re.sub(r"[^a-z0-9 ]", " ", (x or "").lower()).split())

    n = hits = 0
    for d in docs:
        gold = norm(d.answers.get("Document Name-Answer"))
        if gold:
            n += 1
            hits += norm(extractor("\n\n".join(d.chunks))["agreement"]["title"]) == gold
    return {"n": n, "accuracy": round(hits / n, 4) if n else None}
