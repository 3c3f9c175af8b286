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
    AI_MODEL = "ai-model"  # which category classifier is in force (casemgr.learning.model_doc)


class VersionAction(StrEnum):
    """How a version became a row; the audit action is `<kind>.<action>` (e.g. `rules.publish`)."""

    BASELINE = "baseline"  # the shipped file(s), recorded once before the first publish
    PUBLISH = "publish"
    ROLLBACK = "rollback"


BASELINE_AUTHOR = "system:shipped"
BASELINE_REASON = "shipped file(s): the baseline in force before the first publish"


class ChangeStatus(StrEnum):
    """`change_requests.status`: a draft waits for a second governance lead, who publishes or rejects it."""

    PENDING = "pending"
    PUBLISHED = "published"  # approved and published (documents.service.publish(..., approved_by=))
    REJECTED = "rejected"


class ChangeAction(StrEnum):
    """Audit actions of a change request: `<kind>.<action>` (e.g. `ai-policy.change_requested`)."""

    REQUESTED = "change_requested"
    APPROVED = "change_approved"
    REJECTED = "change_rejected"
