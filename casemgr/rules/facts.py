"""The fact vocabulary rules can match on, and how a case becomes a flat fact dict.

This module owns the vocabulary: rules files are validated against BASE_FACTS, and the rest of the
application builds facts with `facts_from_case` or `normalize_facts`, never by hand.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from casemgr.cases.enums import Sentiment, Urgency

COMPLAINT_CATEGORIES = (
    "credit_card",
    "credit_reporting",
    "debt_collection",
    "mortgages_and_loans",
    "retail_banking",
)
CUAD_CLAUSES = (
    "Cap On Liability",
    "Uncapped Liability",
    "Non-Compete",
    "Exclusivity",
    "Change Of Control",
    "Anti-Assignment",
    "Termination For Convenience",
    "Renewal Term",
)


@dataclass(frozen=True)
class FactSpec:
    name: str
    kind: str  # "str" | "num" | "bool" | "list"
    values: tuple[str, ...] | None = None  # allowed literals in rules (None: free text)
    description: str = ""


BASE_FACTS: dict[str, FactSpec] = {
    f.name: f
    for f in (
        FactSpec("type", "str", None, "case type (a name from case-types.yaml; checked when rules are parsed)"),
        FactSpec("stage", "str", None, "current workflow stage of the case"),
        FactSpec("reason_code", "str", None, "exception reason code set on the case (its `exception_reason` field)"),
        FactSpec("category", "str", COMPLAINT_CATEGORIES, "complaint product category"),
        FactSpec("urgency", "str", Urgency.values()),
        FactSpec("sentiment", "str", Sentiment.values()),
        FactSpec("amount", "num", None, "disputed or contract amount"),
        FactSpec("customer_tier", "str", ("standard", "gold", "platinum")),
        FactSpec("channel", "str", ("email", "form", "api", "import", "demo")),
        FactSpec("keywords", "list", None, "lower-case keywords found in subject/description"),
        FactSpec("clauses", "list", CUAD_CLAUSES, "CUAD clause names present in the contract"),
        FactSpec("ai_confidence", "num", None, "classifier confidence 0..1"),
        FactSpec("ai_available", "bool", None, "an AI classification exists for the case"),
    )
}

# Keywords the intake text is scanned for. Rules may also name other keywords; those only match
# when a caller supplies them in `keywords` explicitly.
KEYWORDS = (
    "fraud",
    "identity theft",
    "lawsuit",
    "attorney",
    "regulator",
    "cfpb",
    "foreclosure",
    "bankruptcy",
    "harassment",
    "discrimination",
    "data breach",
    "gdpr",
    "refund",
    "chargeback",
    "urgent",
    "deceased",
    "elderly",
    "military",
)
_KEYWORD_RES = [(k, re.compile(r"\b" + re.escape(k) + r"\b")) for k in KEYWORDS]


def find_keywords(text: str) -> list[str]:
    low = (text or "").lower()
    # The substring test first: a keyword that is not in the text at all (most of them) costs no regex search,
    # which was 4 % of a served intake request's time (issue 23 profile). The regex then checks word boundaries.
    return [k for k, rx in _KEYWORD_RES if k in low and rx.search(low)]


NUM_LIMIT = 10**15


def _num(value: Any) -> float | int | None:
    """A finite number the engine's JSON parser reads exactly like Python does.

    durable-rules' parser reads no exponent notation, so values are kept where json.dumps writes plain
    digits: magnitudes are clamped to 1e15, and below 1e-4 they become 0.
    """
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value) if isinstance(value, int | float) else float(str(value).replace(",", ""))
    except (ValueError, OverflowError):
        return None
    if not math.isfinite(f):
        return None  # NaN/inf are not JSON; treat as missing
    f = max(-float(NUM_LIMIT), min(float(NUM_LIMIT), f))
    if abs(f) < 1e-4:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= NUM_LIMIT:
        return value
    return int(f) if f.is_integer() else f


def _str(value: Any) -> str | None:
    if value is None:
        return None
    # Enums (e.g. SQLModel string enums) carry their value in .value.
    value = getattr(value, "value", value)
    s = str(value).strip()
    return s or None


def normalize_facts(facts: dict[str, Any]) -> dict[str, Any]:
    """Coerce a loose fact dict to the vocabulary: unknown keys dropped, None dropped, lists sorted.

    Missing facts stay missing: a condition on a missing fact never matches (same in the engine and in
    the plain-Python evaluator).
    """
    out: dict[str, Any] = {}
    for name, spec in BASE_FACTS.items():
        if name not in facts:
            if spec.kind == "list":
                out[name] = []
            continue
        value = facts[name]
        if spec.kind == "num":
            v = _num(value)
        elif spec.kind == "bool":
            v = None if value is None else bool(value)
        elif spec.kind == "list":
            if isinstance(value, str):
                items: Any = [value]
            elif isinstance(value, list | tuple | set | frozenset):
                items = value
            else:
                items = []
            v = sorted({str(x) for x in items if x is not None and str(x) != ""})
        else:
            v = _str(value)
            if v is not None and name != "stage":
                # Case type names are lower-case by schema (NAME_RE), so any spelling of one normalises.
                v = v.lower() if (spec.values and v.lower() in spec.values) or name == "type" else v
        if v is not None:
            out[name] = v
    return out


def facts_from_case(case: Any) -> dict[str, Any]:
    """Build facts from any Case-like object (attributes read with getattr and defaults)."""
    g = getattr
    ai = g(case, "ai", None) or {}
    contract = g(case, "contract", None) or {}
    fields = g(case, "fields", None) or {}
    facts: dict[str, Any] = {
        "type": g(case, "case_type", None),
        "stage": g(case, "stage", None),
        "category": g(case, "category", None),
        "urgency": g(case, "urgency", None),
        "sentiment": g(case, "sentiment", None),
        "amount": g(case, "amount", None),
        "customer_tier": g(case, "customer_tier", None),
        "channel": g(case, "channel", None),
    }
    if facts["amount"] is None and isinstance(fields, dict):
        facts["amount"] = fields.get("amount")
    if isinstance(fields, dict) and fields.get("exception_reason"):
        facts["reason_code"] = fields["exception_reason"]
    text = " ".join(str(x) for x in (g(case, "subject", None), g(case, "description", None)) if x)
    keywords = set(find_keywords(text))
    if isinstance(fields, dict) and isinstance(fields.get("keywords"), list):
        keywords.update(str(k).lower() for k in fields["keywords"])
    facts["keywords"] = sorted(keywords)
    clauses = contract.get("clauses") if isinstance(contract, dict) else None
    if isinstance(clauses, dict):
        facts["clauses"] = sorted(
            name for name, v in clauses.items() if (v.get("present") if isinstance(v, dict) else v is True)
        )
    elif isinstance(clauses, list):
        facts["clauses"] = sorted(str(c) for c in clauses)
    classification = ai.get("classification") if isinstance(ai, dict) else None
    facts["ai_available"] = bool(classification)
    if isinstance(classification, dict):
        # Complaints carry a category confidence; contracts (no categories) only the urgency one.
        conf = classification.get("confidence")
        facts["ai_confidence"] = conf if conf is not None else classification.get("urgency_confidence")
    return normalize_facts({k: v for k, v in facts.items() if v is not None})
