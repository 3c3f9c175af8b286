"""Vocabularies of versioned documents."""

from __future__ import annotations

from enum import StrEnum


class DocumentKind(StrEnum):
    """`policy_versions.kind`: one value per kind of versioned document."""

    AI_POLICY = "ai-policy"
    RULES = "rules"
    CASE_TYPES = "case-types"
    SOP = "sop"
    MACROS = "macros"


class VersionAction(StrEnum):
    """How a version became a row; the audit action is `<kind>.<action>` (e.g. `rules.publish`)."""

    BASELINE = "baseline"  # the shipped file(s), recorded once before the first publish
    PUBLISH = "publish"
    ROLLBACK = "rollback"


BASELINE_AUTHOR = "system:shipped"
BASELINE_REASON = "shipped file(s): the baseline in force before the first publish"
