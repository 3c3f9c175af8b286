"""The governance vocabulary: what decide() made of an AI output, and where a person's review of it stands."""

from __future__ import annotations

from casemgr.cases.enums import Values


class DecisionOutcome(Values):
    """decide()'s status for one AI output (stored in ai_decisions.outcome)."""

    APPLIED = "applied"
    SUGGESTED = "suggested"
    REJECTED = "rejected"


class ReviewStatus(Values):
    """ai_decisions.review_status: a person's part in a decision."""

    NONE = "none"  # nothing to review
    PENDING = "pending"  # a suggestion waiting for its owner
    SAMPLED = "sampled"  # an applied decision drawn for a reviewer's audit
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    OVERRIDDEN = "overridden"

    @classmethod
    def to_review(cls) -> tuple[ReviewStatus, ...]:
        """Statuses a reviewer still has to look at."""
        return (cls.PENDING, cls.SAMPLED)


class Widget(Values):
    """How the policy form editor (governance/policy_form.py) shows one schema field."""

    TEXT = "text"
    NUMBER = "number"
    SELECT = "select"
    CHECKBOX = "checkbox"  # one bool
    CHECKS = "checks"  # a list of choices
    DATE = "date"
    LIST = "list"  # a list of free words, comma separated
