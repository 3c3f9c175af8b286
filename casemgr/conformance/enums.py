"""Vocabulary of conformance deviations (stored in JSON snapshots as their plain strings)."""

from __future__ import annotations

from enum import StrEnum


class DeviationKind(StrEnum):
    UNDESIGNED_MOVE = "undesigned_move"  # a move the case type does not allow (old version, import, migration)
    WRONG_START = "wrong_start"  # the first stage is not the type's initial stage
    SKIPPED_STAGE = "skipped_stage"  # a forward move over stages of the normal order
    BACK_TRANSITION = "back_transition"  # a move to an earlier stage of the normal order
    REWORK_LOOP = "rework_loop"  # a stage entered again in the same case
    NEVER_USED_STAGE = "never_used_stage"  # a designed stage no case of the type ever entered
