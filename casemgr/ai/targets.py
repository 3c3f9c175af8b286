"""The learned text targets: what each one predicts, where its artefact lives, how it is labelled.

`category` is trained on the CFPB product column; `urgency` and `intent` on our own annotation of
the same complaints (casemgr/ai/data/, guidelines in ANNOTATION-GUIDELINES.md). One registry, so
training, evaluation, the provider and the threshold suggester agree on names.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from importlib import resources
from pathlib import Path


class TargetName(StrEnum):
    category = "category"
    urgency = "urgency"
    intent = "intent"


@dataclass(frozen=True)
class Target:
    name: TargetName
    prefix: str  # artefact file prefix in casemgr/ai/artifacts/
    kind: str  # model kind recorded in the artefact metadata and on every decision
    label_column: str  # column of the shipped training file


TARGETS: dict[TargetName, Target] = {
    TargetName.category: Target(TargetName.category, "complaints-", "tfidf-cue-ensemble-v2", "product"),
    TargetName.urgency: Target(TargetName.urgency, "urgency-", "tfidf-cue-ensemble-urgency-v1", "urgency"),
    TargetName.intent: Target(TargetName.intent, "intent-", "tfidf-cue-ensemble-intent-v1", "intent"),
}

URGENCY_LEVELS = ("low", "normal", "high", "critical")
INTENTS = (
    "dispute_charge", "fraud_identity_theft", "fix_credit_report", "debt_validation", "stop_collector_conduct",
    "refund_fee_reversal", "hardship_modification", "payment_problem", "account_access", "information_request", "other",
)


def annotated_data() -> Path:
    """The shipped, self-contained annotated complaints (id, product, narrative, urgency, intent)."""
    return Path(str(resources.files("casemgr.ai").joinpath("data/complaints-annotated.csv")))


def get(name: str) -> Target:
    try:
        return TARGETS[TargetName(name)]
    except ValueError:
        raise ValueError(f"unknown target {name!r}; choose one of {', '.join(t.value for t in TargetName)}") from None
