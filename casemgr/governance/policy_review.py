"""review_by enforced (issue 21): after the date the policy is overdue for review, and a review is recorded.

A governance lead who has reviewed the policy in force records it (`record_review`): an audit event
`ai-policy.reviewed` naming the version, the comment and the next review date. The effective review date of
the active version is the later of the file's `review_by` and the last recorded review of that same version;
a new version starts again from its own `review_by`. Overdue is computed from casemgr.clock (time-machine).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from casemgr.audit.models import AuditEvent
from casemgr.audit.service import record
from casemgr.clock import now
from casemgr.errors import PermissionDenied, ValidationFailed
from casemgr.governance.policy import KIND, active_policy

REVIEWED = f"{KIND}.reviewed"
MAX_AHEAD = timedelta(days=366)  # a review vouches for a year at most
LEAD_ROLE = "governance"


def _last_review(session: Session, version: str) -> AuditEvent | None:
    return session.execute(
        select(AuditEvent).where(col(AuditEvent.action) == REVIEWED, col(AuditEvent.entity) == f"{KIND}:{version}")
        .order_by(col(AuditEvent.seq).desc()).limit(1)
    ).scalar_one_or_none()


def review_state(session: Session, today: date | None = None) -> dict[str, Any]:
    """{version, review_by (effective), file_review_by, overdue, days_overdue, last_review}."""
    policy = active_policy(session)
    today = today or now().date()
    due = policy.model.review_by
    last = _last_review(session, policy.version)
    last_info = None
    if last is not None and last.after:
        nxt = date.fromisoformat(last.after["next_review_by"])
        due = max(due, nxt)
        last_info = {"by": last.actor, "at": last.ts.isoformat(), "comment": last.after.get("comment"),
                     "next_review_by": nxt.isoformat()}
    overdue = today > due
    return {"version": policy.version, "review_by": due.isoformat(),
            "file_review_by": policy.model.review_by.isoformat(), "overdue": overdue,
            "days_overdue": (today - due).days if overdue else 0, "last_review": last_info}


def record_review(session: Session, *, actor: str, roles: Iterable[str], comment: str,
                  next_review_by: date) -> dict[str, Any]:
    """Record that the policy in force was reviewed; moves its effective review date to `next_review_by`."""
    if LEAD_ROLE not in set(roles):
        raise PermissionDenied(f"recording a policy review needs the {LEAD_ROLE!r} role")
    if not comment or not comment.strip():
        raise ValidationFailed("say what was reviewed (comment)", field="comment")
    today = now().date()
    if not today < next_review_by <= today + MAX_AHEAD:
        raise ValidationFailed(f"the next review date must be after today and within {MAX_AHEAD.days} days",
                               field="next_review_by")
    before = review_state(session, today)
    record(session, actor=actor, action=REVIEWED, entity=f"{KIND}:{before['version']}",
           before={"review_by": before["review_by"], "overdue": before["overdue"]},
           after={"version": before["version"], "comment": comment.strip()[:2000],
                  "next_review_by": next_review_by.isoformat()})
    return review_state(session, today)
