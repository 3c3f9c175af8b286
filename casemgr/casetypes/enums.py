"""Vocabularies of case types as data."""

from __future__ import annotations

from enum import StrEnum


class DiffStatus(StrEnum):
    """How a stage, task or transition differs between two case-type versions (also its CSS/SVG class)."""

    SAME = "same"
    ADDED = "added"
    REMOVED = "removed"
    CHANGED = "changed"
