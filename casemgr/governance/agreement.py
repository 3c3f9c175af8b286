"""Inter-reviewer agreement on the double-reviewed slice (issue 21, against automation bias: EU AI Act Art. 14).

A share of sampled decisions (review.double_review_rate in the AI policy) is judged twice: the first verdict acts
on the case, a different reviewer gives a second verdict blind (casemgr.governance.service._second_opinion).
Agreement on the verdict (accept / override) is reported as percent agreement and Cohen's kappa, which discounts
the agreement two reviewers would reach by chance given how often each accepts: a kappa near 0 with a high
percent agreement means the reviewers agree mostly because both accept nearly everything.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from casemgr.governance.enums import ReviewStatus
from casemgr.governance.models import AIDecision

VERDICTS = ("accept", "override")


def cohen_kappa(pairs: Iterable[tuple[str, str, int]]) -> tuple[float | None, float | None, int]:
    """(percent agreement, kappa, n) from (first verdict, second verdict, count) triples. Kappa is None when
    chance agreement is total (both reviewers gave one and the same verdict every time: nothing to discount)."""
    counts: dict[tuple[str, str], int] = {}
    for a, b, n in pairs:
        counts[(a, b)] = counts.get((a, b), 0) + n
    total = sum(counts.values())
    if not total:
        return None, None, 0
    po = sum(n for (a, b), n in counts.items() if a == b) / total
    labels = {a for a, _ in counts} | {b for _, b in counts}
    pe = sum((sum(n for (a, _), n in counts.items() if a == lab) / total)
             * (sum(n for (_, b), n in counts.items() if b == lab) / total) for lab in labels)
    kappa = None if pe >= 1.0 else (po - pe) / (1.0 - pe)
    return round(po, 4), (round(kappa, 4) if kappa is not None else None), total


def _first(status: str) -> str:
    return "accept" if status == ReviewStatus.ACCEPTED else "override"


def agreement(session: Session) -> dict[str, Any]:
    """Overall and per decision kind: n pairs, percent agreement, kappa; plus second opinions still open."""
    rows = session.execute(
        select(col(AIDecision.kind), col(AIDecision.review_status), col(AIDecision.second_verdict), func.count())
        .where(col(AIDecision.double_review).is_(True), col(AIDecision.second_verdict).is_not(None))
        .group_by(col(AIDecision.kind), col(AIDecision.review_status), col(AIDecision.second_verdict))
    ).all()
    by_kind: dict[str, list[tuple[str, str, int]]] = {}
    for kind, status, second, n in rows:
        by_kind.setdefault(str(kind), []).append((_first(str(status)), str(second), int(n)))
    po, kappa, n = cohen_kappa(t for triples in by_kind.values() for t in triples)
    waiting = session.execute(
        select(func.count()).select_from(AIDecision)
        .where(col(AIDecision.double_review).is_(True), col(AIDecision.second_verdict).is_(None),
               col(AIDecision.review_status).in_([ReviewStatus.ACCEPTED, ReviewStatus.OVERRIDDEN]))
    ).scalar_one()
    kinds = []
    for kind in sorted(by_kind):
        k_po, k_kappa, k_n = cohen_kappa(by_kind[kind])
        kinds.append({"kind": kind, "n": k_n, "percent_agreement": k_po, "kappa": k_kappa})
    return {"n": n, "percent_agreement": po, "kappa": kappa, "waiting": int(waiting), "by_kind": kinds}
