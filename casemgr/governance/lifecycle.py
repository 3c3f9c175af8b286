"""AI policy lifecycle: validate, diff, simulate, publish, rollback, replay.

Publish, rollback and history are the generic versioned-document ones (casemgr.documents, kind 'ai-policy');
this module adds what only the AI policy has: the governance role check, simulation and replay.

A candidate policy is YAML text. Validation is complete or nothing (file:line problems). Simulation replays
the recorded AI outputs of the last N cases under the candidate and the active policy and counts how
decisions move between applied (auto), suggested and rejected (never), per kind and per owner role.
Replay runs the same recorded outputs through the real choke point under the now-active policy and records
(and applies) the outcomes, so a simulation followed by publish + replay gives identical counts.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from casemgr.documents import service as documents
from casemgr.documents.document import unified_diff
from casemgr.errors import PermissionDenied, ValidationFailed
from casemgr.governance.decide import category_of, decide
from casemgr.governance.enums import DecisionOutcome
from casemgr.governance.models import AIDecision
from casemgr.governance.policy import AI_POLICY, FILE_NAME, Policy, active_policy, parse_policy
from casemgr.governance.service import facts_of, output_of, record_decision
from casemgr.policyfile import PolicyFileError

PUBLISH_ROLE = "governance"
OUTCOMES = DecisionOutcome.values()
MODE_OF = {DecisionOutcome.APPLIED: "auto", DecisionOutcome.SUGGESTED: "suggest", DecisionOutcome.REJECTED: "never"}


class InvalidPolicy(ValidationFailed):
    """The candidate policy has problems; `details['problems']` lists them as {file, line, message}."""


def check(text: str, file: str = "ai-policy.yaml") -> dict[str, Any]:
    """Validate candidate text: {ok, version, problems[], warnings[]} (never raises for a bad policy)."""
    try:
        policy = parse_policy(text, file)
    except PolicyFileError as exc:
        return {"ok": False, "version": None, "problems": [p.as_dict() for p in exc.problems], "warnings": []}
    return {"ok": True, "version": policy.version, "problems": [], "warnings": policy.warnings()}


def parse_or_raise(text: str, file: str = "ai-policy.yaml") -> Policy:
    try:
        return parse_policy(text, file)
    except PolicyFileError as exc:
        raise _invalid(exc) from None


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: d}


def diff(session: Session, text: str) -> dict[str, Any]:
    """Text diff and the list of changed settings between the active policy and a valid candidate."""
    candidate = parse_or_raise(text, "candidate")
    active = active_policy(session)
    a = _flatten(active.model.model_dump(mode="json"))
    b = _flatten(candidate.model.model_dump(mode="json"))
    changes = [{"path": k, "active": a.get(k), "candidate": b.get(k)} for k in sorted(set(a) | set(b))
               if a.get(k) != b.get(k)]
    return {"active_version": active.version, "candidate_version": candidate.version,
            "text_diff": unified_diff({FILE_NAME: active.text}, {FILE_NAME: candidate.text},
                                      old_label=active.version, new_label=candidate.version),
            "changes": changes}


def recorded_decisions(session: Session, last_n: int = 500) -> list[AIDecision]:
    """The latest recorded AI output per (case, kind, field) for the last N cases that have any."""
    case_ids = list(session.execute(
        select(col(AIDecision.case_id)).group_by(col(AIDecision.case_id))
        .order_by(func.max(col(AIDecision.id)).desc()).limit(last_n)
    ).scalars())
    if not case_ids:
        return []
    latest_ids = select(func.max(col(AIDecision.id))).where(col(AIDecision.case_id).in_(case_ids)).where(
        col(AIDecision.context).is_not(None)
    ).group_by(col(AIDecision.case_id), col(AIDecision.kind), col(AIDecision.field))
    return list(session.execute(
        select(AIDecision).where(col(AIDecision.id).in_(latest_ids)).order_by(col(AIDecision.id))
    ).scalars())


def _empty() -> dict[str, int]:
    return dict.fromkeys(OUTCOMES, 0)


EXAMPLES = 5  # example cases linked for each change (issue 21)
NO_CATEGORY = "(none)"


def simulate(session: Session, candidate: str | Policy, *, last_n: int = 500,
             baseline: Policy | None = None) -> dict[str, Any]:
    """Replay recorded AI outputs of the last N cases under the candidate and the active policy.

    Returns totals before/after, the moves between outcomes ("applied->suggested": n, ...), and the same
    per decision kind, per category and per owner role, plus how many applied decisions would be sampled for
    review. `changed` lists each change as {kind, category, move, count, examples}: up to EXAMPLES case ids
    (newest first) to open, so a lead can see what the change does to real cases. Nothing is written.
    """
    cand = candidate if isinstance(candidate, Policy) else parse_or_raise(candidate, "candidate")
    base = baseline or active_policy(session)
    rows = recorded_decisions(session, last_n)
    before, after = _empty(), _empty()
    moves: Counter[str] = Counter()
    per_kind: dict[str, dict[str, Any]] = {}
    per_category: dict[str, dict[str, Any]] = {}
    per_owner: dict[str, dict[str, dict[str, int]]] = {}
    changed: dict[tuple[str, str, str], dict[str, Any]] = {}
    sampled = 0
    cases: set[int] = set()
    for row in reversed(rows):  # newest first, so the examples are recent cases
        facts, output = facts_of(row), output_of(row)
        old = decide(facts, output, base)
        new = decide(facts, output, cand)
        category = category_of(facts, output) or NO_CATEGORY
        cases.add(row.case_id)
        before[old.status] += 1
        after[new.status] += 1
        sampled += int(new.sampled)
        moved = old.status != new.status
        for table, key in ((per_kind, row.kind), (per_category, category)):
            t = table.setdefault(key, {"before": _empty(), "after": _empty(), "changed": 0})
            t["before"][old.status] += 1
            t["after"][new.status] += 1
            t["changed"] += int(moved)
        if moved:
            move = f"{old.status}->{new.status}"
            moves[move] += 1
            ch = changed.setdefault((row.kind, category, move), {"kind": row.kind, "category": category,
                                                                 "move": move, "count": 0, "examples": []})
            ch["count"] += 1
            if len(ch["examples"]) < EXAMPLES and row.case_id not in ch["examples"]:
                ch["examples"].append(row.case_id)
        for label, oc in (("before", old), ("after", new)):
            owner = oc.owner or "(none)"
            o = per_owner.setdefault(owner, {"before": _empty(), "after": _empty()})
            o[label][oc.status] += 1
    return {
        "cases": len(cases), "decisions": len(rows), "active_version": base.version,
        "candidate_version": cand.version, "before": before, "after": after, "moves": dict(sorted(moves.items())),
        "references": _references(session, {cid for ch in changed.values() for cid in ch["examples"]}),
        "per_kind": dict(sorted(per_kind.items())), "per_category": dict(sorted(per_category.items())),
        "per_owner": dict(sorted(per_owner.items())), "changed": [changed[k] for k in sorted(changed)],
        "sampled_for_review_after": sampled, "modes": MODE_OF,
    }


def _references(session: Session, case_ids: set[int]) -> dict[int, str]:
    """Case references of the example cases (what people recognise), one query."""
    from casemgr.cases.models import Case

    if not case_ids:
        return {}
    return {int(i): str(r) for i, r in session.execute(
        select(col(Case.id), col(Case.reference)).where(col(Case.id).in_(case_ids))).all()}


def replay(session: Session, *, last_n: int = 500) -> dict[str, Any]:
    """Run the recorded outputs of the last N cases through the choke point under the active policy,
    recording (and applying) each outcome as a new decision. Returns the same counts simulate reports."""
    from casemgr.cases.models import Case

    policy = active_policy(session)
    rows = recorded_decisions(session, last_n)
    run_id = "replay-" + uuid.uuid4().hex[:9]
    totals = _empty()
    per_owner: dict[str, dict[str, int]] = {}
    per_kind: dict[str, dict[str, int]] = {}
    cases: set[int] = set()
    for row in rows:
        case = session.get(Case, row.case_id)
        if case is None:
            continue
        new = record_decision(session, case, output_of(row), policy=policy, facts=facts_of(row), run_id=run_id,
                              route=True)
        cases.add(row.case_id)
        totals[new.outcome] += 1
        per_owner.setdefault(new.owner_role or "(none)", _empty())[new.outcome] += 1
        per_kind.setdefault(new.kind, _empty())[new.outcome] += 1
    return {"cases": len(cases), "decisions": sum(totals.values()), "policy_version": policy.version,
            "run_id": run_id, "totals": totals, "per_owner": dict(sorted(per_owner.items())),
            "per_kind": dict(sorted(per_kind.items()))}


def _require_publisher(roles: Iterable[str], reason: str | None) -> str:
    if PUBLISH_ROLE not in set(roles):
        raise PermissionDenied(f"publishing the AI policy needs the {PUBLISH_ROLE!r} role")
    if not reason or not reason.strip():
        raise ValidationFailed("a reason is required", field="reason")
    return reason.strip()


def _invalid(exc: PolicyFileError) -> InvalidPolicy:
    return InvalidPolicy("invalid policy:\n" + "\n".join(str(p) for p in exc.problems),
                         problems=[p.as_dict() for p in exc.problems])


def _result(res: documents.Published) -> dict[str, Any]:
    return {"version": res.version, "id": res.id, "changed": res.changed, "diff": res.diff if res.changed else ""}


def publish(session: Session, text: str, *, actor: str, roles: Iterable[str], reason: str,
            approved_by: str | None = None) -> dict[str, Any]:
    """Validate and activate a policy (governance role and a reason required). Invalid text changes nothing.

    The first publish records the shipped file as version 1 first, so a rollback can return to it."""
    reason = _require_publisher(roles, reason)
    try:
        res = documents.publish(session, AI_POLICY, AI_POLICY.from_text(text), author=actor, reason=reason,
                                approved_by=approved_by)
    except PolicyFileError as exc:
        raise _invalid(exc) from None
    return {**_result(res), "warnings": res.value.warnings()}


def request_publish(session: Session, text: str, *, actor: str, user_id: int | None, roles: Iterable[str],
                    reason: str) -> dict[str, Any]:
    """Four eyes (issue 21): validate the candidate and store it as a change request that a different governance
    lead approves (then it is published). With single_person_publish on, it is published at once. The answer
    keeps publish()'s keys (version, changed, diff, warnings) and adds `request`."""
    from casemgr.documents import changes

    reason = _require_publisher(roles, reason)
    try:
        row = changes.request(session, AI_POLICY.kind, {FILE_NAME: text}, actor=actor, user_id=user_id, roles=roles,
                              reason=reason)
    except PolicyFileError as exc:
        raise _invalid(exc) from None
    except changes.NothingToChange as exc:
        return {"request": None, "status": "unchanged", "version": exc.details["version"], "changed": False,
                "diff": "", "warnings": parse_policy(text, FILE_NAME).warnings()}
    published = row.status == "published"
    return {"request": changes.as_dict(row), "status": row.status, "version": row.version, "changed": published,
            "diff": row.diff or "", "warnings": parse_policy(text, FILE_NAME).warnings()}


def rollback(session: Session, *, actor: str, roles: Iterable[str], reason: str | None = None,
             to: str | None = None) -> dict[str, Any]:
    """Re-activate an earlier version (by version hash prefix or row id; default: the one before the active).

    The old text is validated again (org.yaml may have changed since); an invalid one is refused.
    """
    reason = _require_publisher(roles, reason or "rollback")
    try:
        return _result(documents.rollback(session, AI_POLICY, author=actor, reason=reason, to=to))
    except PolicyFileError as exc:
        raise _invalid(exc) from None


def versions(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    """Published versions, newest first (author, time, reason, active flag, diff)."""
    return [{"id": r.id, "version": r.version, "author": r.author, "reason": r.reason, "is_active": r.is_active,
             "created_at": r.created_at.isoformat() if r.created_at else None, "diff": r.diff}
            for r in documents.history(session, AI_POLICY.kind, limit)]


def active_info(session: Session) -> dict[str, Any]:
    """The policy in force: version, where it comes from, its settings and warnings (review_by, kill switch)."""
    from casemgr.governance.policy import active_error

    p = active_policy(session)
    return {"version": p.version, "source": p.source, "text": p.text, "policy": p.model.model_dump(mode="json"),
            "warnings": p.warnings(), "refused_source_error": active_error()}
