"""Activating a candidate model is a change request of the document kind `ai-model`, exactly like a policy change.

A governance lead requests it with a reason, but only for a candidate whose report says OFFERED (it beat the
model in force on the held-back slice) and only while that model is still the one in force (otherwise the
comparison no longer holds: train again). A *different* lead approves it through casemgr.documents.changes
(/governance/changes, /api/changes/{id}/approve, `casemgr policy approve`); only then is it in force, and
every decision from then on names its version. Rollback re-activates an earlier version (default: the previous
one), like a policy rollback; the baseline (the bundled model) is version 1.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlmodel import Session

from casemgr.documents import changes
from casemgr.documents import service as documents
from casemgr.documents.models import ChangeRequest
from casemgr.errors import Conflict, PermissionDenied, ValidationFailed
from casemgr.learning import store
from casemgr.learning.enums import CandidateVerdict
from casemgr.learning.model_doc import AI_MODEL, CANDIDATES, FILE_NAME, KIND, pointer_text
from casemgr.policyfile import PolicyFileError


def why_not_offered(session: Session, report: dict[str, Any]) -> str | None:
    """Why this candidate cannot be requested now (None: it can). The pages ask first: no button that 422s."""
    from casemgr.learning.candidates import active_model

    if report.get("verdict") != CandidateVerdict.OFFERED:
        return f"refused: {report.get('why') or 'it did not beat the active model'}"
    in_force = active_model(session).version
    if report.get("active_version") != in_force:
        return (f"compared with model {report.get('active_version')}, but {in_force} is in force now: "
                "train a new candidate")
    if in_force == report.get("version"):
        return "already in force"
    return None


def request_activation(session: Session, version: str, *, actor: str, user_id: int | None, roles: Iterable[str],
                       reason: str) -> ChangeRequest:
    report = store.read_report(version)
    why = why_not_offered(session, report)
    if why is not None:
        if why.startswith("compared with"):
            raise Conflict(why)
        raise ValidationFailed(f"candidate {version} cannot be activated: {why}", field="version")
    comparison = report.get("comparison") or {}
    text = pointer_text(store.artifact_path(version), source=CANDIDATES,
                        holdout_macro_f1=(comparison.get("candidate") or {}).get("macro_f1"),
                        trained_on_examples=(report.get("examples") or {}).get("train"))
    try:
        return changes.request(session, KIND, {FILE_NAME: text}, actor=actor, user_id=user_id, roles=roles,
                               reason=reason)
    except PolicyFileError as exc:
        raise ValidationFailed(f"candidate {version}: {exc}", field="version") from None


def rollback(session: Session, *, actor: str, roles: Iterable[str], reason: str, to: str | None = None
             ) -> documents.Published:
    if changes.LEAD_ROLE not in set(roles):
        raise PermissionDenied(f"rolling back the model needs the {changes.LEAD_ROLE!r} role")
    if not reason or not reason.strip():
        raise ValidationFailed("a reason is required", field="reason")
    try:
        return documents.rollback(session, AI_MODEL, author=actor, reason=reason.strip(), to=to)
    except PolicyFileError as exc:
        raise ValidationFailed(f"that model version cannot be restored: {exc}", field="to") from None


def history(session: Session, limit: int = 50) -> list[dict[str, Any]]:
    """Model versions in force over time, newest first (the bundled baseline, once recorded, is the oldest)."""
    out = []
    for row in documents.history(session, KIND, limit):
        try:
            pointer = AI_MODEL.parse(AI_MODEL.from_row(row)).model_dump()
        except PolicyFileError:
            pointer = {}
        out.append({"id": row.id, "version": row.version, "model_version": pointer.get("version"),
                    "artifact": pointer.get("artifact"), "holdout_macro_f1": pointer.get("holdout_macro_f1"),
                    "author": row.author, "reason": row.reason, "is_active": row.is_active,
                    "created_at": row.created_at.isoformat() if row.created_at else None})
    return out
