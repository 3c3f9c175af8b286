"""Vocabulary of governed learning."""

from __future__ import annotations

from enum import StrEnum


class ExampleVerdict(StrEnum):
    """What a person said about the AI's category: the label is theirs either way."""

    ACCEPTED = "accepted"  # the AI's value was right (reviewed accept, or an accepted suggestion)
    OVERRIDDEN = "overridden"  # the person gave the right value


class Split(StrEnum):
    TRAIN = "train"
    HOLDOUT = "holdout"  # never trained on: the slice candidate and active model are compared on


class CandidateVerdict(StrEnum):
    OFFERED = "offered"  # beats the active model on the holdout: a lead may request its activation
    REFUSED = "refused"  # does not beat it (or too little evidence): never offered


class ExportFormat(StrEnum):
    JSONL = "jsonl"
    CSV = "csv"


TRAIN_JOB = "ai.train_candidate"
CANDIDATE_TRAINED = "ai-model.candidate_trained"  # audit action
