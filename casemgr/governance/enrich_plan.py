"""AI enrichment results stored in bulk: planned on plain copies of the cases, written with a few statements per
batch (issue 23: one worker must drain >= 200 cases/s).

The ordinary writer (enrich.apply_results) applies each decision as its own `cases.change`: claim the version,
refresh the case, write the kind's value, append one audit event, then the status change and the re-route, all
through the ORM. That is ~40 statements and ~35 ms of CPU per case, inside the write transaction. Here the same
steps run in memory on a plain copy of the case read before the models ran (no session open):

  decide() per output (the policy choke point, unchanged) -> a decision row for every outcome; an applied kind
  writes its value on the copy exactly as its `apply` would (only kinds whose `set` touches nothing but the case,
  `DecisionKind.plain`), bumps the version and describes itself in one audit event; then the `ai.status` change
  and the rules' re-route (`routing.apply_decision`, the function route_case uses); a rule consequence the
  policy held back is filed as a suggestion row, as `binding.record_held` files it.

The writer then checks, in its one write transaction, that no case changed since it was read (same version) and
stores everything with one INSERT per table, one UPDATE per shape of case change, and `audit.append_events`.
A case that cannot be planned (a stage move applied, a failed call) or that changed meanwhile goes through
enrich.apply_results as before. `tests/governance/test_enrich_plan.py` compares the two writers row by row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from types import SimpleNamespace
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlmodel import Session, col

from casemgr.ai.models import AICall
from casemgr.ai.schemas import Suggestion
from casemgr.audit.service import PendingEvent, append_events
from casemgr.cases.enums import CaseStatus, TaskStatus
from casemgr.cases.models import Case, Task
from casemgr.cases.routing import apply_decision, evaluate_rules
from casemgr.clock import now
from casemgr.db import allocate_ids, draft, insert_rows, row_of, table_of
from casemgr.governance import binding, kinds
from casemgr.governance.decide import CaseFacts, decide
from casemgr.governance.enrich import (
    STAGE_KINDS,
    CallOutcome,
    EnrichInput,
    _view,
    build_outputs,
)
from casemgr.governance.enums import DecisionOutcome, ReviewStatus
from casemgr.governance.kinds.base import small
from casemgr.governance.models import AIDecision
from casemgr.governance.service import ai_actor, row_values
from casemgr.limits import AI_ACTOR_CHARS, AI_RATIONALE_CHARS

CASE_COLUMNS = tuple(c.key for c in table_of(Case).columns)


def snapshot(case: Case) -> SimpleNamespace:
    """A plain copy of every column of `case` (planning mutates the copy, never the ORM object)."""
    return SimpleNamespace(**{k: getattr(case, k) for k in CASE_COLUMNS})


def open_task_names(session: Session, case_ids: list[int]) -> dict[int, set[str]]:
    out: dict[int, set[str]] = {i: set() for i in case_ids}
    if case_ids:
        for case_id, name in session.execute(select(col(Task.case_id), col(Task.name)).where(
                col(Task.case_id).in_(case_ids), col(Task.status) == TaskStatus.OPEN)).all():
            out[case_id].add(name)
    return out


@dataclass
class _EventRef:
    """An audit event whose entity names a decision not stored yet (its id is known at write time)."""

    event: PendingEvent
    decision: int  # index into PlannedEnrich.decisions


@dataclass
class PlannedEnrich:
    case_id: int
    from_version: int
    case: SimpleNamespace  # the case after the run
    changed: tuple[str, ...]  # columns to write
    calls: list[dict[str, Any]]  # ai_calls rows, in call order (ids at write time)
    decisions: list[dict[str, Any]]  # ai_decisions rows; "ai_call_id" holds a call index until written
    events: list[PendingEvent | _EventRef]
    tasks: list[SimpleNamespace]
    applied_facts: dict[str, Any] = field(default_factory=dict)  # field -> provenance; decision_id is an index
    held: list[int] = field(default_factory=list)  # decisions filed for held-back rule consequences (the last ones)


def plan(inp: EnrichInput, case: SimpleNamespace, open_tasks: set[str], calls: list[CallOutcome], provider: Any
         ) -> PlannedEnrich | None:
    """The run's whole effect on `case` (a snapshot), or None when only the ordinary writer may store it."""
    if case.status == CaseStatus.CLOSED or not calls or any(c.error for c in calls):
        return None
    original = dict(vars(case))
    t = now()
    call_rows = [{**c.record, "created_at": t} for c in calls]
    # Call rows as build_outputs reads them; `id` is the call's index until the writer knows the real id.
    stored = {c.capability: (c, SimpleNamespace(**row, id=i)) for i, (c, row) in enumerate(zip(calls, call_rows, strict=True))}
    built = build_outputs(inp, case, stored, provider)
    suggestion = built.suggestion
    run_id = uuid.uuid4().hex[:16]
    facts = CaseFacts.from_case(case)
    if inp.has_categories and facts.category is None:
        facts = replace(facts, category=built.cls.category.label)
    decisions: list[dict[str, Any]] = []
    events: list[PendingEvent | _EventRef] = []
    applied_facts: dict[str, Any] = {}
    for out in built.outputs:
        outcome = decide(facts, out, inp.policy)
        row = row_values(case.id, out, outcome, facts, run_id)
        index = len(decisions)
        decisions.append(row)
        if outcome.status == DecisionOutcome.APPLIED:
            kind = kinds.get(out.kind)
            if kind is None or not kind.plain:
                return None  # stage moves and kinds that write more than the case: the ordinary writer
            target = out.field
            before = kind.current(None, case, target)  # type: ignore[arg-type]
            kind.set(None, case, target, out.value)  # type: ignore[arg-type]
            after = kind.current(None, case, target)  # type: ignore[arg-type]
            case.version += 1
            case.updated_at = now()
            shown_before, shown_after = kind.audit_values(before, after, case)  # type: ignore[arg-type]
            events.append(_EventRef(PendingEvent(
                ai_actor(out), "ai.applied", case.id, None, small(shown_before),
                {**small(shown_after), "version": case.version, "kind": kind.name}), index))
            row["previous"] = before if kind.revertible else None
            if out.kind == "classify" and out.field:
                applied_facts[out.field] = {"value": out.value.get(out.field), "confidence": out.confidence,
                                            "decision_id": index}
        elif out.kind in STAGE_KINDS and outcome.status == DecisionOutcome.REJECTED:
            suggestion = Suggestion(action=None, rationale=f"rejected by the policy: {outcome.reason}"
                                    [:AI_RATIONALE_CHARS], confidence=0.0)
    if case.status == CaseStatus.CLOSED:
        return None
    view = _view(inp, built.cls, built.urgency, suggestion, built.model, provider, inp.policy, run_id,
                 applied_facts, case)  # type: ignore[arg-type]
    actor = f"ai:{built.model}"[:AI_ACTOR_CHARS]
    # enrich._set_status: one change of ai_status (and the AI's view of the case).
    before_status = case.ai_status
    case.version += 1
    case.updated_at = now()
    case.ai_status = "ok"
    case.ai = {**(case.ai or {}), **view}
    events.append(PendingEvent(actor, "ai.status", case.id, "case", {"ai_status": before_status},
                               {"ai_status": "ok", "reason": "enriched", "version": case.version}))
    # routing.route_case: the rules on the new facts, one event, no version claim.
    decision = evaluate_rules(case)
    tasks, r_before, r_after = apply_decision(case, decision, open_tasks, reason="ai facts")
    events.append(PendingEvent(actor, "case.routed", case.id, "case", r_before, r_after))
    # A rule consequence the policy held back becomes a suggestion to its kind's owner (binding.record_held),
    # unless the same proposal already waits: checked at write time (_drop_waiting_proposals).
    held: list[int] = []
    if r_after.get("bound_by_policy"):
        after_facts = CaseFacts.from_case(case)
        for bound in r_after["bound_by_policy"]:
            out = binding.held_output(bound)
            outcome = decide(after_facts, out, inp.policy)
            if outcome.status == DecisionOutcome.APPLIED:
                return None  # the gate and the policy disagree: only the ordinary writer may apply it
            held.append(len(decisions))
            decisions.append(row_values(case.id, out, outcome, after_facts, None))
    changed = tuple(k for k in CASE_COLUMNS if getattr(case, k) != original[k])
    return PlannedEnrich(case_id=case.id, from_version=original["version"], case=case, changed=changed,
                         calls=call_rows, decisions=decisions, events=events, tasks=tasks,
                         applied_facts=applied_facts, held=held)


def current_versions(session: Session, case_ids: list[int]) -> dict[int, int]:
    """The stored versions, locked for this transaction (PostgreSQL; SQLite holds the write lock already)."""
    q = select(col(Case.id), col(Case.version)).where(col(Case.id).in_(case_ids))
    if session.get_bind().dialect.name == "postgresql":
        q = q.with_for_update()
    return {int(i): int(v) for i, v in session.execute(q).all()}


def _drop_waiting_proposals(session: Session, planned: list[PlannedEnrich]) -> None:
    """Held-back consequences whose proposal already waits for its owner are not filed again: binding.record_held's
    check, for the whole batch in one query, over the stored suggestions and the run's own (the ordinary writer
    has flushed those when it checks). They are the last decisions of their run and nothing refers to them, so
    dropping them moves no index."""
    with_held = [p for p in planned if p.held]
    if not with_held:
        return
    waiting = binding.pending_proposals(session, [p.case_id for p in with_held],
                                        {p.decisions[i]["kind"] for p in with_held for i in p.held})
    for p in with_held:
        known = waiting | {(p.case_id, d["kind"], binding.proposal_key(d["proposed"]))
                           for i, d in enumerate(p.decisions) if i not in p.held
                           and d["outcome"] == DecisionOutcome.SUGGESTED and d["review_status"] == ReviewStatus.PENDING}
        drop = {i for i in p.held
                if (p.case_id, p.decisions[i]["kind"], binding.proposal_key(p.decisions[i]["proposed"])) in known}
        if drop:
            p.decisions = [d for i, d in enumerate(p.decisions) if i not in drop]
            p.held = [i for i in p.held if i not in drop]


def store(session: Session, planned: list[PlannedEnrich]) -> None:
    """Write planned runs in the caller's write transaction (their cases are known to be unchanged)."""
    if not planned:
        return
    session.flush()  # rows the ordinary writer added in this transaction come first (ids, audit chain)
    _drop_waiting_proposals(session, planned)
    call_ids = iter(allocate_ids(session, table_of(AICall), sum(len(p.calls) for p in planned)))
    decision_ids = iter(allocate_ids(session, table_of(AIDecision), sum(len(p.decisions) for p in planned)))
    calls: list[dict[str, Any]] = []
    decisions: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    events: list[PendingEvent] = []
    by_shape: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    # The columns a decision row leaves to the model's defaults, built once per batch rather than a draft per row
    # (a sixteenth of the drain's CPU, issue 23 profile); the rows are only inserted, so they may share them.
    defaults = vars(draft(AIDecision))
    for p in planned:
        ids = [next(call_ids) for _ in p.calls]
        calls.extend({**row, "id": cid} for row, cid in zip(p.calls, ids, strict=True))
        dids = [next(decision_ids) for _ in p.decisions]
        for row, did in zip(p.decisions, dids, strict=True):
            ref = row["ai_call_id"]
            decisions.append({**defaults, **row, "id": did, "ai_call_id": ids[ref] if ref is not None else None})
        for info in p.applied_facts.values():
            info["decision_id"] = dids[info["decision_id"]]  # the same dict sits in case.ai["applied_facts"]
        for ev in p.events:
            if isinstance(ev, _EventRef):
                ev.event.entity = f"ai_decision:{dids[ev.decision]}"
                events.append(ev.event)
            else:
                events.append(ev)
        tasks.extend(row_of(t) for t in p.tasks)
        by_shape.setdefault(p.changed, []).append(
            {"_id": p.case_id, "_version": p.from_version, **{k: getattr(p.case, k) for k in p.changed}})
    insert_rows(session, table_of(AICall), calls)
    insert_rows(session, table_of(AIDecision), decisions)
    insert_rows(session, table_of(Task), tasks)
    table = table_of(Case)
    for shape, rows in by_shape.items():
        stmt = (update(table).where(table.c.id == bindparam("_id"), table.c.version == bindparam("_version"))
                .values({k: bindparam(k) for k in shape}))
        session.connection().execute(stmt, rows)
    append_events(session, events)
