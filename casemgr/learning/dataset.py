"""Reviewed AI category decisions as labelled examples, with their provenance (`casemgr ai dataset export`).

An example is a classify decision on the case's `category` that a person reviewed: an accept (the AI's value is
the label) or an override with the right value (the person's value is the label; an override that only undid
the AI without naming the right category teaches nothing and is counted as skipped). The text is what the
classifier saw: the case subject and description (casemgr.governance.enrich).

The split is by case, from a hash of the case id, so the same case never lands on both sides and the held-back
slice stays held back however often candidates are trained: a case is in the holdout when
sha256("holdout:<case id>") < learning_holdout_share.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import IO, Any

from sqlalchemy import select
from sqlmodel import Session, col

from casemgr import csvsafe
from casemgr.cases.models import Case
from casemgr.governance.enums import ReviewStatus
from casemgr.governance.models import AIDecision
from casemgr.learning.enums import ExampleVerdict, ExportFormat, Split

FIELD = "category"
COLUMNS = ("decision_id", "case_id", "case_reference", "label", "verdict", "ai_label", "ai_confidence", "reviewer",
           "reviewed_at", "policy_version", "model_version", "split", "text")


@dataclass(frozen=True)
class Example:
    decision_id: int
    case_id: int
    case_reference: str | None
    label: str
    verdict: str  # ExampleVerdict
    ai_label: str | None  # what the AI proposed
    ai_confidence: float | None
    reviewer: str | None
    reviewed_at: str | None
    policy_version: str
    model_version: str | None
    split: str  # Split
    text: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def holdout_share() -> float:
    from casemgr.config import get_settings

    return float(get_settings().learning_holdout_share)


def split_of(case_id: int, share: float | None = None) -> Split:
    share = holdout_share() if share is None else share
    h = hashlib.sha256(f"holdout:{case_id}".encode()).digest()
    return Split.HOLDOUT if int.from_bytes(h[:8], "big") / 2**64 < share else Split.TRAIN


def case_text(subject: str | None, description: str | None) -> str:
    """The classifier's input for a case (as casemgr.governance.enrich builds it)."""
    return "\n\n".join(x for x in (subject, description) if x)


def label_of(row: AIDecision, field: str = FIELD) -> tuple[str | None, ExampleVerdict | None]:
    """(label, verdict) of a reviewed decision, or (None, None) when it names no right value."""
    if row.review_status == ReviewStatus.ACCEPTED:
        value = (row.proposed or {}).get(field)
        return (str(value), ExampleVerdict.ACCEPTED) if value else (None, None)
    if row.review_status == ReviewStatus.OVERRIDDEN:
        value = (row.override_value or {}).get(field) or (row.previous or {}).get(field)
        if not value or value == (row.proposed or {}).get(field):
            return None, None
        return str(value), ExampleVerdict.OVERRIDDEN
    return None, None


def _reviewed(session: Session, field: str, batch: int) -> Iterator[tuple[AIDecision, Case]]:
    last = 0
    while True:
        rows = session.execute(
            select(AIDecision, Case).join(Case, col(Case.id) == col(AIDecision.case_id))
            .where(col(AIDecision.kind) == "classify", col(AIDecision.field) == field,
                   col(AIDecision.review_status).in_([ReviewStatus.ACCEPTED, ReviewStatus.OVERRIDDEN]),
                   col(AIDecision.id) > last)
            .order_by(col(AIDecision.id)).limit(batch)
        ).all()
        if not rows:
            return
        yield from ((d, c) for d, c in rows)
        last = int(rows[-1][0].id or 0)


def examples(session: Session, *, field: str = FIELD, share: float | None = None, batch: int = 1000,
             stats: dict[str, int] | None = None) -> Iterator[Example]:
    """Every reviewed decision with a label, oldest first (keyset pages of `batch`). `stats` counts skips."""
    share = holdout_share() if share is None else share
    for d, c in _reviewed(session, field, batch):
        label, verdict = label_of(d, field)
        text = case_text(c.subject, c.description)
        if label is None or verdict is None or not text.strip():
            if stats is not None:
                stats["skipped"] = stats.get("skipped", 0) + 1
            continue
        if stats is not None:
            stats[verdict.value] = stats.get(verdict.value, 0) + 1
        yield Example(
            decision_id=int(d.id or 0), case_id=int(d.case_id), case_reference=c.reference, label=label,
            verdict=verdict.value, ai_label=(d.proposed or {}).get(field), ai_confidence=d.confidence,
            reviewer=d.reviewed_by, reviewed_at=d.reviewed_at.isoformat() if d.reviewed_at else None,
            policy_version=d.policy_version, model_version=d.model_version, split=split_of(d.case_id, share).value,
            text=text)


def write(rows: Iterator[Example], fmt: ExportFormat, out: IO[str]) -> int:
    """Write examples as JSON lines or CSV (spreadsheet formulas neutralised); returns how many."""
    n = 0
    if fmt == ExportFormat.CSV:
        w = csvsafe.Writer(out)
        w.writerow(COLUMNS)
        for ex in rows:
            d = ex.as_dict()
            w.writerow([d[c] for c in COLUMNS])
            n += 1
        return n
    for ex in rows:
        out.write(json.dumps(ex.as_dict(), ensure_ascii=False) + "\n")
        n += 1
    return n
