"""Governing law of a contract: the jurisdiction whose law governs it, as a clean name ("New York", "England",
"People's Republic of China"), never with the next sentence attached ("New York. The").

Contracts say it in many ways: "governed by the laws of the State of X", "the laws of X shall govern",
"controlled by the laws of ...", "governed by English law", "the internal laws State of New York", "legislation of
the Republic of X shall apply", "accepted in the State of Nevada and governed by the laws thereof". The finder works
sentence by sentence: a sentence must carry a governing cue, must not be a representation about where a party is
organised, and the first jurisdiction it names wins.
"""

from __future__ import annotations

import re

_SENTENCE = re.compile(r"(?:(?<=[a-z0-9\])\"”])|(?<=[A-Z]{2}))\.\s+(?=[A-Z(\[])|;\s+|\n{2,}")
# "Applicable Law" is usually a defined term for all law, and "Governmental Entity" no cue: only the verbs count.
_CUE = re.compile(r"\bgovern(?:ed|s|ing\s+law)?\b|\bconstrued?\b|\bconstruction\b|interpret|controlled\s+by|"
                  r"shall\s+apply|choice\s+of\s+law|legal\s+regime", re.IGNORECASE)
# "duly organized and validly existing under the laws of Delaware" names a party's home, not the contract's law.
_NOT_GOVERNING = re.compile(r"organi[sz]ed|incorporated|existing\s+under|formed\s+under|registered\s+under|"
                            r"compl(?:y|iance)\s+with|violat|licen[cs]e[ds]?\s+under", re.IGNORECASE)

# A jurisdiction: capitalised words, joined by "of"/"and"/"the" inside a name ("Republic of South Africa",
# "People's Republic of China", "Bosnia and Herzegovina"); stops before lower-case text or a new sentence.
_CAP = r"[A-Z][A-Za-z'’.-]*"
_NAME = rf"(?P<law>{_CAP}(?:\s+(?:of\s+(?:the\s+)?|and\s+)?{_CAP}){{0,4}})"
_PREFIX = r"(?:(?:the\s+)?(?:State|Commonwealth|Province|Republic|Federal\s+Republic|Kingdom|Emirate|Canton|District)\s+of\s+)?"
_LAWS_OF = re.compile(
    r"(?<![A-Za-z])(?i:(?:laws?|legislation|regulations|statutes)(?:\s+and\s+(?:judicial\s+)?decisions)?(?:\s+(?:in\s+force|in\s+effect))?"
    r"\s+(?:of|in)\s+(?:the\s+)?|internal\s+laws?\s+(?=State\s+of))"
    r"(?i:" + _PREFIX + r")" + _NAME
)
_THE_LAWS = re.compile(r"(?i:the\s+)?" + _NAME + r"(?i:\s+law\b)")
_STATE_OF = re.compile(r"(?i:State|Commonwealth|Province|Republic)\s+(?i:of)\s+(?i:the\s+)?" + _NAME)
_THEREOF = re.compile(r"(?i:in\s+the\s+)(?i:State|Commonwealth|Province)\s+of\s+" + _NAME + r"(?=[^.]{0,160}\blaws\s+thereof)")

# "English law" -> England: adjectives that contracts use for a jurisdiction.
_ADJECTIVES = {
    "english": "England", "scottish": "Scotland", "irish": "Ireland", "french": "France", "german": "Germany",
    "swiss": "Switzerland", "dutch": "Netherlands", "israeli": "Israel", "canadian": "Canada", "italian": "Italy",
    "japanese": "Japan", "chinese": "People's Republic of China", "indian": "India", "spanish": "Spain",
    "swedish": "Sweden", "danish": "Denmark", "belgian": "Belgium", "australian": "Australia", "korean": "Korea",
    "singaporean": "Singapore", "luxembourg": "Luxembourg", "austrian": "Austria", "finnish": "Finland",
    "norwegian": "Norway", "mexican": "Mexico", "brazilian": "Brazil", "colombian": "Colombia",
    "taiwanese": "Taiwan", "russian": "Russia", "polish": "Poland", "greek": "Greece", "turkish": "Turkey",
}
_FEDERAL = {"united states", "united states of america", "u.s", "u.s.a", "usa", "federal"}
# Words that end a jurisdiction name even when capitalised: the start of the next clause or heading.
_STOP_WORDS = {"the", "any", "all", "each", "in", "this", "article", "section", "applicable", "without", "excluding",
               "except", "as", "and", "which", "that", "to", "shall", "notwithstanding", "for", "with", "including",
               "govern", "governing", "law", "laws", "inc", "llc", "ltd", "parties", "party", "agreement", "contract",
               "its", "such", "other", "than", "regardless", "if", "by", "on", "at", "venue", "jurisdiction",
               # page furniture and the next heading when the text lost its full stop: "Minnesota Page 5 of 10"
               "page", "exhibit", "schedule", "annex", "appendix", "attachment", "notices", "notice", "entire",
               "miscellaneous", "severability", "waiver", "assignment", "counterparts", "headings", "arbitration"}
# "State of Washington, U.S.A.": the country after a state or region is not part of its name.
_TRAILING_COUNTRY = re.compile(r"(?<=\w)[\s,]+(?:U\.?S\.?A?\.?|USA|United\s+States(?:\s+of\s+America)?)\.?$")
# Capitalised words that head a clause, not a place: "Governing Law", "Applicable Law", "Choice of Law".
_NOT_FIRST = {"governing", "applicable", "choice", "disputes", "dispute", "arbitration", "incorporate", "relevant",
              "local", "federal", "common", "international", "foreign", "domestic", "escrow", "ich"}
_LAW_SUBJECTS = {"escrow", "securities", "corporate", "private", "model", "commercial", "civil", "business",
                 "corporation", "contract", "contracts", "public", "procedural", "substantive"}
_NOT_PLACES = {"territory", "jurisdiction", "country", "state", "agreement", "company", "licensor", "licensee",
               "party", "parties", "united", "government", "seller", "buyer", "supplier", "distributor"}


def _clean(raw: str) -> str | None:
    words: list[str] = []
    for w in raw.split():
        bare = w.strip(".,;:'’").lower()
        if words and (bare in _STOP_WORDS and bare not in {"of", "and", "the"}):
            break
        words.append(w)
        if w.endswith(".") and not re.fullmatch(r"(?:[A-Z]\.)+", w):  # "York." ends it; "U.S.A." does not
            break
    # A trailing "of"/"and"/"the" belongs to what was cut off.
    while words and words[-1].strip(".,").lower() in {"of", "and", "the"}:
        words.pop()
    name = _TRAILING_COUNTRY.sub("", " ".join(words)).strip(" .,;:")
    if words and words[0].strip(".,").lower() in _STOP_WORDS | _NOT_FIRST:
        return None
    if not name or name.lower() in _NOT_PLACES or not re.search(r"[A-Za-z]{2}", name):
        return None
    if name.lower() in _ADJECTIVES:  # "regulations of Colombian private law"
        return _ADJECTIVES[name.lower()]
    if len(words) > 1 and words[-1].strip(".,").lower() in _LAW_SUBJECTS:  # "California Escrow Law" -> California
        return _clean(" ".join(words[:-1]))
    if name.isupper() and len(name) > 3:  # "NEW YORK" -> "New York"; "USA" stays
        name = " ".join(p if p in {"OF", "AND"} else p.capitalize() for p in name.split()).replace(" OF ", " of ").replace(
            " AND ", " and ")
    return name


def _candidates(sentence: str) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for rx in (_LAWS_OF, _THEREOF):
        for m in rx.finditer(sentence):
            name = _clean(m.group("law"))
            if name:
                found.append((m.start(), name))
    if found:  # "the laws of X" is the clearest phrasing; "X law" and "State of X" only stand in for it
        return sorted(found)
    shouting = sentence.isupper()
    for m in _THE_LAWS.finditer(sentence):
        words = m.group("law").split()
        adj = words[-1].lower()
        if adj in _ADJECTIVES:  # "English law"
            found.append((m.start(), _ADJECTIVES[adj]))
        elif not shouting and len(words) <= 3:  # "Ohio law", "New York law"; in capitals "CHOICE OF LAW" is no place
            name = _clean(m.group("law"))
            if name:
                found.append((m.start(), name))
    if not found:  # "... LAWS, OTHER THAN CHOICE OF LAW RULES, OF THE STATE OF GEORGIA"
        for m in _STATE_OF.finditer(sentence):
            name = _clean(m.group("law"))
            if name:
                found.append((m.start(), name))
    return sorted(found)


_US_STATES = ("Alabama|Alaska|Arizona|Arkansas|California|Colorado|Connecticut|Delaware|District of Columbia|Florida|Georgia|"
              "Hawaii|Idaho|Illinois|Indiana|Iowa|Kansas|Kentucky|Louisiana|Maine|Maryland|Massachusetts|Michigan|Minnesota|"
              "Mississippi|Missouri|Montana|Nebraska|Nevada|New Hampshire|New Jersey|New Mexico|New York|North Carolina|"
              "North Dakota|Ohio|Oklahoma|Oregon|Pennsylvania|Rhode Island|South Carolina|South Dakota|Tennessee|Texas|Utah|"
              "Vermont|Virginia|Washington|West Virginia|Wisconsin|Wyoming")
# Text without capitals ("governed by the laws of the state of new york") has no name shape to read: a US state
# named after "laws of the state of" is still one.
_LOWER_STATE = re.compile(rf"\blaws\s+of\s+the\s+(?:state|commonwealth)\s+of\s+({_US_STATES})\b", re.IGNORECASE)


def _lower_case_state(sentence: str) -> str | None:
    m = _LOWER_STATE.search(sentence)
    if not m:
        return None
    return " ".join(w if w == "of" else w.capitalize() for w in m.group(1).lower().split())


def governing_law(text: str) -> str | None:
    """The governing jurisdiction, or None when the contract names none."""
    flat = re.sub(r"[ \t\r\f\v]+", " ", text)
    found = _governing_law(flat)
    if found is None:
        for sent in _SENTENCE.split(flat):
            if _CUE.search(sent) and not _NOT_GOVERNING.search(sent):
                found = _lower_case_state(sent)
                if found:
                    break
    return found


def _governing_law(flat: str) -> str | None:
    for sent in _SENTENCE.split(flat):
        if not _CUE.search(sent) or _NOT_GOVERNING.search(sent):
            continue
        names = [n for _, n in _candidates(sent)]
        if not names:
            continue
        first = names[0]
        if first.lower().rstrip(".") in _FEDERAL:  # "laws of the United States and the State of Florida" -> Florida
            states = [n for n in (_clean(m.group("law")) for m in _STATE_OF.finditer(sent)) if n]
            first = next((n for n in names[1:] + states if n.lower().rstrip(".") not in _FEDERAL), first)
        return first
    return None
