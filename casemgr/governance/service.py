"""Record every AI outcome, apply the allowed ones, and let people accept, reject and review them.

`record_decision` is the only code path that applies an AI output to a case. It asks decide() first, stores
an AIDecision row for every outcome (applied, suggested or rejected, with policy version, model version and
confidence), and for an applied one changes the case the way every change does: claim the version
(optimistic lock, 409 on a stale version), write an audit event as `ai:<model>`, then re-run the rules so
routing stays rule-governed. Suggestions wait for a person holding the owner role; reviewers audit pending
suggestions and a deterministic sample of applied decisions.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from casemgr import csvsafe
from casemgr.audit import service as audit
from casemgr.cases import service as cases
from casemgr.cases.change import change
from casemgr.cases.models import Case, Task
from casemgr.clock import now
from casemgr.errors import Conflict, InvalidTransition, NotFound, PermissionDenied, ValidationFailed
from casemgr.governance import kinds
from casemgr.governance.decide import AIOutput, CaseFacts, Outcome, decide, invalid_reason
from casemgr.governance.enums import DecisionOutcome, ReviewStatus
from casemgr.governance.kinds.base import DecisionKind
from casemgr.governance.models import AIDecision
from casemgr.governance.policy import Policy, active_policy
from casemgr.limits import ACTOR_CHARS, AI_ACTOR_CHARS, REASON_CODE_CHARS

REVIEW_OPEN = ReviewStatus.to_review()


def ai_actor(output: AIOutput | AIDecision) -> str:
    model = output.model_version or output.provider or "unknown"
    return f"ai:{model}"[:AI_ACTOR_CHARS]


def output_of(row: AIDecision) -> AIOutput:
    """The AI output a decision row recorded (for replay, simulate and accept)."""
    return AIOutput(kind=row.kind, value=dict(row.proposed or {}), confidence=row.confidence,
                    field=_output_field(row), model_version=row.model_version, provider=row.provider,
                    rationale=row.rationale, ai_call_id=row.ai_call_id)


def _output_field(row: AIDecision) -> str | None:
    """The case field a decision names itself (classify), else None."""
    kind = kinds.get(row.kind)
    return row.field if kind is not None and kind.uses_field else None


def facts_of(row: AIDecision) -> CaseFacts:
    if row.context:
        return CaseFacts.from_context(row.context)
    raise ValidationFailed(f"decision {row.id} has no recorded context")


# ---------------------------------------------------------------- applying values to a case


def _kind(name: str) -> DecisionKind:
    kind = kinds.get(name)
    if kind is None:
        raise ValidationFailed(f"cannot apply decision kind {name!r}")
    return kind


def _apply(session: Session, case: Case, kind: str, field: str | None, value: dict[str, Any], *, actor: str,
           action: str, decision_id: int | None, route: bool) -> tuple[Case, dict[str, Any] | None]:
    """Apply one decision's value to the case as one case change (the kind says how); returns (case, previous
    value when revertible)."""
    return _kind(kind).apply(session, case, field, value, actor=actor, action=action,
                             entity=f"ai_decision:{decision_id}", route=route)


# ---------------------------------------------------------------- the choke point, recorded


def record_decision(
    session: Session,
    case: Case,
    output: AIOutput,
    *,
    policy: Policy | None = None,
    facts: CaseFacts | None = None,
    run_id: str | None = None,
    route: bool = True,
) -> AIDecision:
    """Pass one AI output through decide(), record the outcome, and apply it if the policy allows.

    Every outcome gets an AIDecision row. `never` outcomes are stored as rejected and never appear as
    suggestions. When applying fails validation at apply time (for example an assignee that does not exist)
    the row is stored as rejected with that reason. StaleVersion propagates: the caller retries.
    """
    policy = policy or active_policy(session)
    facts = facts or CaseFacts.from_case(case)
    outcome = decide(facts, output, policy)
    row = _row(case.id or 0, output, outcome, facts, run_id)
    session.add(row)
    session.flush()
    if outcome.status == DecisionOutcome.APPLIED:
        try:
            with session.begin_nested():
                _, previous = _apply(session, case, output.kind, output.field, output.value, actor=ai_actor(output),
                                     action="ai.applied", decision_id=row.id, route=route)
        except (ValidationFailed, InvalidTransition) as exc:
            session.refresh(case)
            row.outcome, row.reason = DecisionOutcome.REJECTED, f"could not apply: {exc.message}"
            row.review_status, row.sampled = ReviewStatus.NONE, False
        else:
            row.previous = previous
        session.add(row)
        session.flush()
    return row


def _row(case_id: int, output: AIOutput, outcome: Outcome, facts: CaseFacts, run_id: str | None) -> AIDecision:
    return AIDecision(**row_values(case_id, output, outcome, facts, run_id))


def row_values(case_id: int, output: AIOutput, outcome: Outcome, facts: CaseFacts, run_id: str | None
               ) -> dict[str, Any]:
    """The columns of the decision row for one outcome (the ORM writer and the batch writer, enrich_plan)."""
    review = {DecisionOutcome.APPLIED: ReviewStatus.SAMPLED if outcome.sampled else ReviewStatus.NONE,
              DecisionOutcome.SUGGESTED: ReviewStatus.PENDING, DecisionOutcome.REJECTED: ReviewStatus.NONE}
    return dict(
        case_id=case_id, kind=output.kind, field=output.target_field(), proposed=dict(output.value),
        rationale=output.rationale, confidence=output.confidence, outcome=outcome.status, reason=outcome.reason,
        owner_role=outcome.owner, policy_version=outcome.policy_version, model_version=output.model_version,
        provider=output.provider, review_status=review[outcome.status], sampled=outcome.sampled,
        sample_rate=outcome.extra.get("sample_rate"),
        double_review=bool(outcome.extra.get("double_review")),
        context=facts.to_context(), run_id=run_id, ai_call_id=output.ai_call_id, created_at=now(),
    )


def get_decision(session: Session, decision_id: int) -> AIDecision:
    row = session.get(AIDecision, decision_id)
    if row is None:
        raise NotFound(f"AI decision {decision_id} not found")
    return row


def decisions_for_case(session: Session, case_id: int, *, include_rejected: bool = False, limit: int | None = None,
                       offset: int = 0) -> list[AIDecision]:
    """Decisions on a case, newest first. Rejected ones (including `never`) are hidden unless asked for."""
    q = select(AIDecision).where(col(AIDecision.case_id) == case_id)
    if not include_rejected:
        q = q.where(col(AIDecision.outcome) != DecisionOutcome.REJECTED)
    q = q.order_by(col(AIDecision.id).desc()).offset(offset).limit(limit)
    return list(session.execute(q).scalars())


def pending_suggestions(session: Session, case_id: int | None = None, roles: Iterable[str] | None = None, *,
                        limit: int | None = None, offset: int = 0) -> list[AIDecision]:
    """Suggestions awaiting a person; optionally only on one case and only for the given owner roles."""
    q = select(AIDecision).where(col(AIDecision.review_status) == ReviewStatus.PENDING,
                                 col(AIDecision.outcome) == DecisionOutcome.SUGGESTED)
    if case_id is not None:
        q = q.where(col(AIDecision.case_id) == case_id)
    if roles is not None:
        q = q.where(AIDecision.owner_role.in_(list(roles)))  # type: ignore[union-attr]
    return list(session.execute(q.order_by(AIDecision.id).offset(offset).limit(limit)).scalars())  # type: ignore[arg-type]


# ---------------------------------------------------------------- people acting on suggestions


def _check_owner(row: AIDecision, roles: Iterable[str]) -> None:
    if row.owner_role not in set(roles):
        raise PermissionDenied(f"this suggestion belongs to the {row.owner_role!r} role")


def _mark_reviewed(row: AIDecision, status: str, actor: str) -> None:
    row.review_status = status
    row.reviewed_by = actor[:ACTOR_CHARS]
    row.reviewed_at = now()


def accept_suggestion(session: Session, decision_id: int, *, actor: str, roles: Iterable[str],
                      comment: str | None = None, resolution_code: str | None = None) -> AIDecision:
    """A person holding the owner role accepts a pending suggestion: it is applied through the same path
    as an auto decision (version claim, audit as the person, re-routing). The case may have moved on since
    the suggestion was made; then the suggestion is refused with 422 and stays pending.

    `resolution_code` is the person's own choice when the suggestion closes a case type with resolution codes:
    the AI proposes closing, but the root cause is confirmed by whoever accepts (422 without one)."""
    row = get_decision(session, decision_id)
    if row.review_status != ReviewStatus.PENDING:
        raise Conflict(f"decision {decision_id} is not a pending suggestion (it is {row.review_status})")
    _check_owner(row, roles)
    case = cases.get_case(session, row.case_id)
    output = output_of(row)
    bad = invalid_reason(CaseFacts.from_case(case), output)
    if bad:
        raise ValidationFailed(f"the suggestion no longer fits the case: {bad}")
    value = dict(output.value)
    if resolution_code:
        value["resolution_code"] = resolution_code
    _, previous = _apply(session, case, row.kind, _output_field(row), value,
                         actor=actor, action="ai.suggestion_accepted", decision_id=row.id, route=True)
    row.previous = previous
    row.override_comment = comment
    _mark_reviewed(row, ReviewStatus.ACCEPTED, actor)
    session.add(row)
    session.flush()
    return row


def reject_suggestion(session: Session, decision_id: int, *, actor: str, roles: Iterable[str], reason: str,
                      comment: str | None = None) -> AIDecision:
    """The owner (or a reviewer) rejects a pending suggestion; a reason is required. Nothing changes on the case."""
    row = get_decision(session, decision_id)
    if row.review_status != ReviewStatus.PENDING:
        raise Conflict(f"decision {decision_id} is not a pending suggestion (it is {row.review_status})")
    roles = set(roles)
    if "reviewer" not in roles:
        _check_owner(row, roles)
    if not reason or not reason.strip():
        raise ValidationFailed("a reason is required to reject a suggestion", field="reason")
    row.override_reason_code = reason.strip()[:REASON_CODE_CHARS]
    row.override_comment = comment
    _mark_reviewed(row, ReviewStatus.REJECTED, actor)
    session.add(row)
    session.flush()
    audit.record(session, actor=actor, action="ai.suggestion_rejected", case_id=row.case_id,
                 entity=f"ai_decision:{row.id}", after={"kind": row.kind, "reason": row.override_reason_code})
    return row


# ---------------------------------------------------------------- reviewer audit


def wants_second_opinion(row: AIDecision) -> bool:
    """A double-reviewed decision whose first verdict is in and whose second (blind) verdict is not."""
    return (bool(row.double_review) and row.second_verdict is None
            and row.review_status in (ReviewStatus.ACCEPTED, ReviewStatus.OVERRIDDEN))


def can_verdict(row: AIDecision, roles: Iterable[str], actor: str | None = None) -> str | None:
    """Why this person may not accept or override `row` (None: they may). Reviewers audit applied (sampled)
    decisions; a pending suggestion belongs to its owner role, as the policy says, whoever reviews. The pages
    ask this first, so they never offer a button that would answer 403; anyone may comment."""
    roles = set(roles)
    if wants_second_opinion(row):
        if "reviewer" not in roles:
            return "reviewing AI decisions needs the reviewer role"
        if actor is not None and actor[:ACTOR_CHARS] == row.reviewed_by:
            return "you gave the first verdict: a second opinion must come from a different reviewer"
        return None
    if row.review_status == ReviewStatus.PENDING:
        if row.owner_role not in roles:
            return f"this suggestion belongs to the {row.owner_role or 'owner'} role; you may comment on it"
        return None
    if "reviewer" not in roles:
        return "reviewing AI decisions needs the reviewer role"
    return None


def _second_opinions(actor: str | None) -> Any:
    """Double-reviewed decisions waiting for a second verdict, from anyone but the first reviewer."""
    from sqlalchemy import and_

    conds: list[Any] = [col(AIDecision.double_review).is_(True), col(AIDecision.second_verdict).is_(None),
             col(AIDecision.review_status).in_([ReviewStatus.ACCEPTED, ReviewStatus.OVERRIDDEN])]
    if actor is not None:
        conds.append(col(AIDecision.reviewed_by) != actor[:ACTOR_CHARS])
    return and_(*conds)


def _open_for(roles: Iterable[str] | None, actor: str | None = None) -> Any:
    """Open review items a person can act on: sampled applied decisions, and suggestions of their own roles;
    for reviewers also the double-reviewed decisions someone else gave the first verdict on."""
    from sqlalchemy import and_, or_

    sampled = col(AIDecision.review_status) == ReviewStatus.SAMPLED
    if roles is None:
        return col(AIDecision.review_status).in_(REVIEW_OPEN)
    mine = and_(col(AIDecision.review_status) == ReviewStatus.PENDING,
                col(AIDecision.owner_role).in_(sorted(set(roles))))
    if "reviewer" in set(roles):
        return or_(sampled, mine, _second_opinions(actor))
    return or_(sampled, mine)


def category_of_decision() -> Any:
    """SQL for the category a decision concerns: the case's category when decided (context), else the category
    a classify decision proposed (the same rule as metrics' grouping)."""
    from sqlalchemy import and_
    from sqlalchemy import case as sql_case

    proposed = sql_case((and_(col(AIDecision.kind) == "classify", col(AIDecision.field) == "category"),
                         col(AIDecision.proposed)["category"].as_string()), else_=None)
    return func.coalesce(col(AIDecision.context)["category"].as_string(), proposed)


def review_queue(session: Session, *, limit: int = 100, kind: str | None = None,
                 roles: Iterable[str] | None = None, after_id: int | None = None,
                 model_version: str | None = None, policy_version: str | None = None,
                 min_confidence: float | None = None, max_confidence: float | None = None,
                 category: str | None = None, actor: str | None = None) -> list[AIDecision]:
    """Decisions to review, oldest first (keyset: `after_id`): the sampled share of applied decisions and, for
    `roles`, the pending suggestions those roles own (all open items when roles is None), plus second opinions
    asked of reviewers other than `actor`."""
    q = select(AIDecision).where(_open_for(roles, actor))
    if kind:
        q = q.where(col(AIDecision.kind) == kind)
    if category:
        q = q.where(category_of_decision() == category)
    if model_version:
        q = q.where(col(AIDecision.model_version) == model_version)
    if policy_version:
        q = q.where(col(AIDecision.policy_version) == policy_version)
    if min_confidence is not None:
        q = q.where(col(AIDecision.confidence) >= min_confidence)
    if max_confidence is not None:
        q = q.where(col(AIDecision.confidence) < max_confidence)
    if after_id is not None:
        q = q.where(col(AIDecision.id) > after_id)
    return list(session.execute(q.order_by(col(AIDecision.id)).limit(limit)).scalars())


def comment_decision(session: Session, decision_id: int, *, actor: str, comment: str) -> AIDecision:
    """Any reviewer may comment on any decision (audited on the case); it changes nothing else."""
    if not comment or not comment.strip():
        raise ValidationFailed("the comment is empty", field="comment")
    row = get_decision(session, decision_id)
    audit.record(session, actor=actor, action="ai.review_comment", case_id=row.case_id,
                 entity=f"ai_decision:{row.id}", after={"kind": row.kind, "comment": comment.strip()[:2000]})
    return row


def review_decision(
    session: Session,
    decision_id: int,
    *,
    actor: str,
    roles: Iterable[str],
    verdict: str,
    reason_code: str | None = None,
    comment: str | None = None,
    value: dict[str, Any] | None = None,
    policy: Policy | None = None,
) -> AIDecision:
    """A reviewer accepts or overrides one decision from the queue. There is no default verdict.

    Override needs a reason code from the policy's list. Overriding an applied decision puts the previous
    value back on the case (or the reviewer's `value`), with a version claim and audit event, and re-runs the
    rules. Overriding a pending suggestion rejects it; with a `value` the reviewer's value is applied instead.
    Accepting a pending suggestion applies it and needs the owner role, like any acceptance.
    """
    roles = set(roles)
    if "reviewer" not in roles:
        raise PermissionDenied("reviewing AI decisions needs the reviewer role")
    if verdict not in ("accept", "override"):
        raise ValidationFailed("verdict must be 'accept' or 'override' (nothing is pre-selected)", field="verdict")
    row = get_decision(session, decision_id)
    if wants_second_opinion(row):
        return _second_opinion(session, row, actor=actor, roles=roles, verdict=verdict, reason_code=reason_code,
                               comment=comment, policy=policy)
    if row.review_status not in REVIEW_OPEN:
        raise Conflict(f"decision {decision_id} is not open for review (it is {row.review_status})")
    why = can_verdict(row, roles)
    if why:
        raise PermissionDenied(why)
    if verdict == "accept":
        if row.review_status == ReviewStatus.PENDING:
            return accept_suggestion(session, decision_id, actor=actor, roles=roles, comment=comment)
        _mark_reviewed(row, ReviewStatus.ACCEPTED, actor)
        row.override_comment = comment
        session.add(row)
        session.flush()
        audit.record(session, actor=actor, action="ai.review_accepted", case_id=row.case_id,
                     entity=f"ai_decision:{row.id}", after={"kind": row.kind})
        return row
    policy = policy or active_policy(session)
    codes = policy.model.review.reason_codes
    if reason_code not in codes:
        raise ValidationFailed(f"reason_code must be one of: {', '.join(codes)}", field="reason_code")
    row.override_reason_code = reason_code
    row.override_comment = comment
    row.override_value = value
    case = cases.get_case(session, row.case_id)
    field = _output_field(row)
    revertible = _kind(row.kind).revertible
    if value is not None:
        check = AIOutput(kind=row.kind, value=value, confidence=1.0, field=field)
        bad = invalid_reason(CaseFacts.from_case(case), check)
        if bad:
            raise ValidationFailed(f"override value is not valid: {bad}", field="value")
    if row.review_status == ReviewStatus.SAMPLED:
        if revertible:
            target = value if value is not None else dict(row.previous or {})
            _apply(session, case, row.kind, field, target, actor=actor, action="ai.overridden", decision_id=row.id,
                   route=True)
        else:
            # Stage moves, notes and tasks are not undone silently: the owner gets a task to undo it by hand.
            with change(session, case.id or 0, case.version, actor, "ai.overridden",
                        entity=f"ai_decision:{row.id}") as ch:
                session.add(Task(case_id=case.id or 0, name=f"Undo AI decision {row.id} ({row.kind})",
                                 stage=ch.case.stage, role=row.owner_role, source="ai", due_at=ch.case.sla_due_at))
                ch.audit(after={"kind": row.kind, "undo_task": True, "version": ch.case.version})
    else:  # pending suggestion overridden: rejected, and the reviewer's own value applied if given
        if value is not None and revertible:
            _apply(session, case, row.kind, field, value, actor=actor, action="ai.overridden", decision_id=row.id,
                   route=True)
        else:
            audit.record(session, actor=actor, action="ai.overridden", case_id=row.case_id,
                         entity=f"ai_decision:{row.id}", after={"kind": row.kind, "reason_code": reason_code})
    _mark_reviewed(row, ReviewStatus.OVERRIDDEN, actor)
    session.add(row)
    session.flush()
    return row


def _second_opinion(session: Session, row: AIDecision, *, actor: str, roles: set[str], verdict: str,
                    reason_code: str | None, comment: str | None, policy: Policy | None) -> AIDecision:
    """The blind second verdict on a double-reviewed decision: recorded for inter-reviewer agreement only (the
    first verdict already acted on the case). Claimed once: two second opinions at the same moment get a 409."""
    from sqlalchemy import update

    why = can_verdict(row, roles, actor)
    if why:
        raise PermissionDenied(why)
    if verdict == "override":
        codes = (policy or active_policy(session)).model.review.reason_codes
        if reason_code not in codes:
            raise ValidationFailed(f"reason_code must be one of: {', '.join(codes)}", field="reason_code")
    at = now()
    res = session.execute(
        update(AIDecision).where(col(AIDecision.id) == row.id, col(AIDecision.second_verdict).is_(None))
        .values(second_verdict=verdict, second_reason_code=reason_code if verdict == "override" else None,
                second_reviewed_by=actor[:ACTOR_CHARS], second_reviewed_at=at)
        .execution_options(synchronize_session=False))
    if res.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(f"decision {row.id} already has its second opinion")
    session.refresh(row)
    first = "accept" if row.review_status == ReviewStatus.ACCEPTED else "override"
    audit.record(session, actor=actor, action="ai.second_review", case_id=row.case_id, entity=f"ai_decision:{row.id}",
                 after={"kind": row.kind, "verdict": verdict, "reason_code": row.second_reason_code,
                        "agrees": verdict == first, "comment": (comment or "")[:2000] or None})
    return row


# ---------------------------------------------------------------- metrics and training data

GROUPINGS = ("kind", "category", "model_version", "policy_version")


def _group_key(row: AIDecision, by: str) -> str:
    if by == "category":
        ctx = row.context or {}
        value = (row.proposed or {}).get("category") if row.kind == "classify" and row.field == "category" else None
        return str(ctx.get("category") or value or "(none)")
    return str(getattr(row, by) or "(none)")


def metrics(session: Session, *, by: str = "kind", since: datetime | None = None) -> list[dict[str, Any]]:
    """Override rate and accuracy per group (kind, category, model_version or policy_version).

    reviewed = accepted + overridden + rejected-by-a-person; accuracy = accepted / reviewed;
    override_rate = (overridden + rejected) / reviewed. Counts of applied/suggested/rejected outcomes too.
    """
    if by not in GROUPINGS:
        raise ValidationFailed(f"by must be one of {', '.join(GROUPINGS)}", field="by")
    groups: dict[str, dict[str, Any]] = {}
    for key, outcome, status, sampled, rate, n in _metric_counts(session, by, since):
        key = str(key or "(none)")
        g = groups.setdefault(key, {"group": key, "decisions": 0, "applied": 0, "suggested": 0, "rejected": 0,
                                    "reviewed": 0, "accepted": 0, "overridden": 0, "open": 0,
                                    "sampled_reviewed": 0, "_w": 0.0, "_wo": 0.0})
        g["decisions"] += n
        g[outcome] = g.get(outcome, 0) + n
        if status in (ReviewStatus.ACCEPTED, ReviewStatus.OVERRIDDEN, ReviewStatus.REJECTED):
            g["reviewed"] += n
            g["accepted" if status == ReviewStatus.ACCEPTED else "overridden"] += n
            if sampled:  # reviewed from the sample: weighted back by 1/rate (casemgr.governance.sampling)
                w = n / rate if rate else float(n)
                g["sampled_reviewed"] += n
                g["_w"] += w
                g["_wo"] += w * (status != ReviewStatus.ACCEPTED)
        elif status in REVIEW_OPEN:
            g["open"] += n
    out = []
    for key in sorted(groups):
        g = groups[key]
        g["accuracy"] = round(g["accepted"] / g["reviewed"], 4) if g["reviewed"] else None
        g["override_rate"] = round(g["overridden"] / g["reviewed"], 4) if g["reviewed"] else None
        w, wo = g.pop("_w"), g.pop("_wo")
        # Applied decisions only: the unbiased estimate for the whole population of auto decisions.
        g["override_rate_weighted"] = round(wo / w, 4) if w else None
        out.append(g)
    return out


def _metric_counts(session: Session, by: str, since: datetime | None) -> Iterable[tuple[Any, ...]]:
    """(group, outcome, review_status, sampled, sample_rate, count): one GROUP BY in the database for column
    groupings (the review page had scanned and decoded every decision, twice: seconds at 20,000); the category
    lives in JSON, so that grouping reads the rows."""
    cond = [AIDecision.created_at >= since] if since is not None else []  # type: ignore[operator]
    if by != "category":
        col_ = getattr(AIDecision, by)
        cols = (col_, AIDecision.outcome, AIDecision.review_status, AIDecision.sampled, AIDecision.sample_rate)
        q = select(*cols, func.count()).where(*cond).group_by(*cols)  # type: ignore[call-overload]
        return [tuple(r) for r in session.execute(q).all()]
    rows = session.execute(select(AIDecision).where(*cond)).scalars()
    return [(_group_key(r, by), r.outcome, r.review_status, r.sampled, r.sample_rate, 1) for r in rows]


def training_rows(session: Session, *, field: str = "category") -> list[tuple[str, str]]:
    """(text, label) pairs from overridden classify decisions: the reviewer's value, or the value the
    override restored. Texts are the case subject and description."""
    rows = session.execute(
        select(AIDecision).where(AIDecision.review_status == ReviewStatus.OVERRIDDEN, AIDecision.kind == "classify",
                                 AIDecision.field == field).order_by(AIDecision.id)  # type: ignore[arg-type]
    ).scalars()
    out = []
    for row in rows:
        label = (row.override_value or {}).get(field) or (row.previous or {}).get(field)
        if not label:
            continue
        case = session.get(Case, row.case_id)
        if case is None:
            continue
        text = "\n".join(x for x in (case.subject, case.description) if x)
        out.append((text, str(label)))
    return out


def export_training_csv(session: Session, *, field: str = "category") -> str:
    """Overrides as labelled training data: CSV with header `text,label` (for `casemgr ai train`)."""
    buf = io.StringIO()
    w = csvsafe.Writer(buf)  # formulas neutralised
    w.writerow(["text", "label"])
    for text, label in training_rows(session, field=field):
        w.writerow([text, label])
    return buf.getvalue()


def queue_item(row: AIDecision, roles: Iterable[str], actor: str | None) -> dict[str, Any]:
    """A review-queue entry: a second-opinion item hides the first verdict (the second reviewer judges blind)."""
    d = decision_dict(row)
    second = wants_second_opinion(row)
    if second:
        d.update(review_status="second_opinion", reviewed_by=None, reviewed_at=None, override_reason_code=None,
                 override_comment=None, override_value=None)
    d["second_opinion"] = second
    d["can_verdict"] = can_verdict(row, roles, actor) is None
    return d


def decision_dict(row: AIDecision) -> dict[str, Any]:
    """JSON shape of one decision for the API and the UI."""
    return {
        "id": row.id, "case_id": row.case_id, "kind": row.kind, "field": row.field, "proposed": row.proposed,
        "previous": row.previous, "rationale": row.rationale, "confidence": row.confidence,
        "outcome": row.outcome, "reason": row.reason, "owner_role": row.owner_role,
        "policy_version": row.policy_version, "model_version": row.model_version, "provider": row.provider,
        "review_status": row.review_status, "sampled": row.sampled, "reviewed_by": row.reviewed_by,
        "reviewed_at": row.reviewed_at.isoformat() if row.reviewed_at else None,
        "override_reason_code": row.override_reason_code, "override_comment": row.override_comment,
        "override_value": row.override_value, "run_id": row.run_id, "edit_distance": row.edit_distance,
        "double_review": row.double_review,
        "second_verdict": row.second_verdict, "second_reason_code": row.second_reason_code,
        "second_reviewed_by": row.second_reviewed_by,
        "second_reviewed_at": row.second_reviewed_at.isoformat() if row.second_reviewed_at else None,
        "created_at": row.created_at.isoformat() if row.created_at else None,
    }
