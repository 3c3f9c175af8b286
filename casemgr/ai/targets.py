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
    lexicon: str | None = None  # guideline cue lexicon: a class-balanced target model (None: the category ensemble)
    # Hand-written synthetic rows (package data) added to the training side only: every training fold in CV
    # and the final fit, never a test fold (data/ANNOTATION-GUIDELINES.md says how they were written).
    supplement: str | None = None
    C: float = 2.0  # inverse regularisation of a target model's logistic regression (classifier.build_target_model)
    # True: the LR joined by an NB-weighted LR as a product of experts (classifier.build_target_ensemble);
    # chosen per target by 5-fold CV (README): it lifts intent and hurts urgency.
    ensemble: bool = False

    @property
    def raw_decision(self) -> bool:
        """Class-balanced target models pick the label from their own scores (see CategoryModel)."""
        return self.lexicon is not None

    def builder(self):  # type: ignore[no-untyped-def]
        """Factory of an untrained model for this target (classifier.train's `builder`)."""
        from functools import partial

        from casemgr.ai import classifier

        if not self.lexicon:
            return classifier.build_model
        build = classifier.build_target_ensemble if self.ensemble else classifier.build_target_model
        return partial(build, self.lexicon, self.C)


TARGETS: dict[TargetName, Target] = {
    TargetName.category: Target(TargetName.category, "complaints-", "tfidf-cue-ensemble-v2", "product"),
    TargetName.urgency: Target(TargetName.urgency, "urgency-", "tfidf-cue-balanced-lr-urgency-v1", "urgency",
                               "lexicons/urgency_cues.txt", "data/intent-supplement.csv"),
    TargetName.intent: Target(TargetName.intent, "intent-", "tfidf-cue-balanced-lr-nblr-intent-v2", "intent",
                              "lexicons/intent_cues.txt", "data/intent-supplement.csv", C=4.0, ensemble=True),
}

URGENCY_LEVELS = ("low", "normal", "high", "critical")
INTENTS = (
    "dispute_charge", "fraud_identity_theft", "fix_credit_report", "debt_validation", "stop_collector_conduct",
    "refund_fee_reversal", "hardship_modification", "payment_problem", "account_access", "information_request", "other",
)


def annotated_data() -> Path:
    """The shipped, self-contained annotated complaints (id, product, narrative, urgency, intent)."""
    return Path(str(resources.files("casemgr.ai").joinpath("data/complaints-annotated.csv")))


def supplement_rows(target: Target, text_col: str = "narrative") -> tuple[list[str], list[str]]:
    """The target's supplementary training rows (texts, labels); empty when it has none."""
    if not target.supplement:
        return [], []
    from casemgr.ai.classifier import read_labelled_csv

    return read_labelled_csv(supplement_path(target), text_col, target.label_column)


def supplement_path(target: Target) -> Path:
    if not target.supplement:
        raise ValueError(f"target {target.name} has no supplementary rows")
    return Path(str(resources.files("casemgr.ai").joinpath(target.supplement)))


def get(name: str) -> Target:
    try:
        return TARGETS[TargetName(name)]
    except ValueError:
        raise ValueError(f"unknown target {name!r}; choose one of {', '.join(t.value for t in TargetName)}") from None
