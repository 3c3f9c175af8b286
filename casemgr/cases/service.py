"""Case commands: create, transition, assign, update, notes, tasks, and the case queries.

Every command after creation runs in one `casemgr.cases.change.change` unit of work: the version claim
(409 on a stale version), one audit event in the same transaction, and re-routing when needed. Code outside
cases that changes a case uses `change` too; nothing else bumps a case version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from types import SimpleNamespace
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import defer
from sqlmodel import Session, col

from casemgr.audit import service as audit
from casemgr.cases import cursor as cursor_codec
from casemgr.cases import resolution
from casemgr.cases.change import FACT_FIELDS, Change, change, snapshot
from casemgr.cases.enums import CaseStatus, TaskStatus
from casemgr.cases.models import Case, Note, Party, StageHistory, Task
from casemgr.cases.schemas import CaseCreate, CaseFilters, CasePatch, TaskIn
from casemgr.casetypes.registry import get_registry
from casemgr.casetypes.schema import CaseTypeDef, FieldDef, StageDef
from casemgr.clock import now
from casemgr.config import get_settings
from casemgr.db import draft
from casemgr.errors import InvalidTransition, NotFound, ValidationFailed
from casemgr.limits import AUDIT_TEXT_CHARS
from casemgr.sla.clock import due_at
from casemgr.sla.enums import SlaState
from casemgr.users.models import User

# ---------------------------------------------------------------- validation


def _check_field_value(fd: FieldDef, value: Any) -> Any:
    if value is None:
        return None
    kind = fd.type
    if kind in ("string", "text"):
        if not isinstance(value, str):
            raise ValidationFailed(f"field {fd.name!r} must be a string", field=fd.name)
        limit = fd.max_length or get_settings().max_field_chars
        if len(value) > limit:
            raise ValidationFailed(f"field {fd.name!r} is longer than {limit} characters", field=fd.name)
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationFailed(f"field {fd.name!r} must be a number", field=fd.name)
        return float(value)
    if kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationFailed(f"field {fd.name!r} must be an integer", field=fd.name)
        return value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValidationFailed(f"field {fd.name!r} must be true or false", field=fd.name)
        return value
    if kind == "date":
        try:
            return date.fromisoformat(str(value)).isoformat()
        except ValueError:
            raise ValidationFailed(f"field {fd.name!r} must be an ISO date (YYYY-MM-DD)", field=fd.name) from None
    if kind == "enum":
        if value not in (fd.choices or []):
            raise ValidationFailed(
                f"field {fd.name!r} must be one of: {', '.join(fd.choices or [])}", field=fd.name
            )
        return value
    return value


def validate_fields(ct: CaseTypeDef, fields: dict[str, Any], *, partial: bool = False) -> dict[str, Any]:
    known = {f.name: f for f in ct.fields}
    unknown = sorted(set(fields) - set(known))
    if unknown:
        raise ValidationFailed(
            f"unknown field(s) for case type {ct.name!r}: {', '.join(unknown)}; "
            f"allowed: {', '.join(sorted(known)) or '(none)'}",
            field="fields",
        )
    clean = {name: _check_field_value(known[name], value) for name, value in fields.items()}
    if not partial:
        missing = [f.name for f in ct.fields if f.required and clean.get(f.name) in (None, "")]
        if missing:
            raise ValidationFailed(f"missing required field(s): {', '.join(missing)}", field="fields")
    return clean


# ---------------------------------------------------------------- helpers


def get_case(session: Session, case_id: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound(f"case {case_id} not found")
    return case


def _stage_def(ct: CaseTypeDef, stage: str) -> StageDef:
    sd = ct.stage(stage)
    if sd is None:
        raise ValidationFailed(f"unknown stage {stage!r} for {ct.name}")
    return sd


def stage_entry(case: Any, ct: CaseTypeDef, stage: str, actor: str, at: datetime) -> tuple[Any, list[Any]]:
    """Put `case` (a Case or a draft) into `stage`: owner, status, SLA target. Returns drafts of the history
    row and the stage's tasks to store."""
    sd = _stage_def(ct, stage)
    case.stage = stage
    case.stage_entered_at = at
    case.owner_role = sd.owner_role or case.owner_role
    case.waiting_on_customer = sd.waits_on_customer
    if sd.final:
        case.status = CaseStatus.CLOSED
        case.closed_at = at
        case.sla_due_at = None
        case.sla_hours = None
        case.sla_state = SlaState.NONE
    else:
        case.status = CaseStatus.OPEN
        case.closed_at = None
        if sd.waits_on_customer:
            case.sla_state = SlaState.PAUSED
            case.sla_due_at = None
            case.sla_hours = None
        elif sd.sla:
            case.sla_hours = sd.sla.hours
            case.sla_due_at = due_at(at, sd.sla.hours, sd.sla.business_hours)
            case.sla_state = SlaState.ON_TRACK
        else:
            case.sla_hours = None
            case.sla_due_at = None
            case.sla_state = SlaState.NONE
    history = draft(StageHistory, case_id=case.id, case_type=case.case_type, stage=stage, entered_at=at, actor=actor)
    tasks = [
        draft(
            Task,
            case_id=case.id, name=tpl.name, kind=tpl.kind, stage=stage, role=tpl.role or sd.owner_role,
            sop=tpl.sop, source="stage", due_at=due_at(at, tpl.due_hours) if tpl.due_hours else case.sla_due_at,
            created_at=at,
        )
        for tpl in sd.tasks
    ]
    return history, tasks


def case_type_def(case: Case) -> CaseTypeDef:
    """The type as the case's pinned case-types version defines it (issue 22: publishing changes new cases)."""
    from casemgr.casetypes.versions import case_type_of

    return case_type_of(case)


def allowed_transitions(case: Case) -> list[str]:
    ct = case_type_def(case)
    sd = ct.stage(case.stage)
    return list(sd.transitions) if sd else []


# ---------------------------------------------------------------- commands


@dataclass
class NewCase:
    """A case about to be opened, not yet stored: everything create_case writes, built without the database.

    create_case (one case, ORM session) and the intake group commit (many cases, one transaction) both start
    here, so a case opened either way has the same columns, stage tasks and audit content.
    """

    ct: CaseTypeDef
    case: SimpleNamespace  # drafts (casemgr.db.draft) of Case, Party, StageHistory and Task rows
    party: SimpleNamespace | None
    history: SimpleNamespace
    tasks: list[SimpleNamespace]
    at: datetime
    actor: str


def plan_case(data: CaseCreate, actor: str, *, created_at: datetime | None = None) -> NewCase:
    """Validate `data` and build the new case in its first stage (raises ValidationFailed / NotFound)."""
    registry = get_registry()
    ct = registry.get(data.case_type)
    fields = validate_fields(ct, data.fields)
    if data.category is not None and "category" in {f.name for f in ct.fields}:
        fields.setdefault("category", validate_fields(ct, {"category": data.category}, partial=True)["category"])
    at = created_at or now()
    party = None
    if data.party is not None:
        party = draft(Party, kind=ct.party_kind, **data.party.model_dump(),
                      created_at=at)
    case = draft(
        Case,
        case_type=ct.name,
        case_type_version=registry.version or None,
        stage=ct.first_stage,
        subject=data.subject,
        description=data.description,
        priority=data.priority,
        channel=data.channel,
        category=data.category or fields.get("category"),
        amount=data.amount if data.amount is not None else fields.get("amount"),
        customer_tier=data.customer_tier or (data.party.tier if data.party else None) or fields.get("customer_tier"),
        fields=fields,
        queue=ct.default_queue,
        created_at=at,
        updated_at=at,
        stage_entered_at=at,
    )
    history, tasks = stage_entry(case, ct, ct.first_stage, actor, at)
    return NewCase(ct=ct, case=case, party=party, history=history, tasks=tasks, at=at, actor=actor)


def assign_case_id(new: NewCase, case_id: int) -> None:
    """Give the planned case its id: the reference and the rows that point at the case follow from it."""
    new.case.id = case_id
    new.case.reference = f"{new.ct.reference_prefix}-{case_id}"
    new.history.case_id = case_id
    for task in new.tasks:
        task.case_id = case_id


def created_event_after(case: Any) -> dict[str, Any]:
    """The `after` of a case.created audit event."""
    return {"reference": case.reference, "case_type": case.case_type, **snapshot(case)}


def create_case(
    session: Session, data: CaseCreate, actor: str, *, created_at: datetime | None = None, route: bool = True
) -> Case:
    new = plan_case(data, actor, created_at=created_at)
    if new.party is not None:
        party = Party(**vars(new.party))
        session.add(party)
        session.flush()
        new.case.party_id = party.id
    case = Case(**vars(new.case))
    session.add(case)
    session.flush()
    assert case.id is not None
    assign_case_id(new, case.id)
    case.reference = new.case.reference
    session.add(StageHistory(**vars(new.history)))
    session.add_all(Task(**vars(t)) for t in new.tasks)
    session.flush()
    audit.record(session, actor=actor, action="case.created", case_id=case.id, entity="case",
                 after=created_event_after(case), at=new.at)
    if route:
        from casemgr.cases.routing import route_case

        route_case(session, case, actor=actor, reason="created")
    return case


def check_transition(case: Case, to_stage: str) -> CaseTypeDef:
    """Raise unless the case's type knows `to_stage` and its current stage may move there."""
    ct = case_type_def(case)
    if ct.stage(to_stage) is None:
        raise ValidationFailed(
            f"unknown stage {to_stage!r} for case type {ct.name}; stages: {', '.join(ct.stage_names)}",
            field="to_stage",
        )
    allowed = allowed_transitions(case)
    if to_stage not in allowed:
        raise InvalidTransition(
            f"cannot move case {case.id} from {case.stage!r} to {to_stage!r}; "
            f"allowed: {', '.join(allowed) or '(none: final stage)'}",
            allowed=allowed,
        )
    return ct


def open_handoff_tasks(session: Session, case_id: int | None) -> list[Task]:
    """The case's open handoff tasks (TaskTemplate kind `handoff`): they block moving into a final stage."""
    return list(session.execute(
        select(Task).where(col(Task.case_id) == case_id, col(Task.status) == TaskStatus.OPEN,
                           col(Task.kind) == "handoff").order_by(col(Task.id))
    ).scalars())


def move_stage(ch: Change, to_stage: str) -> None:
    """Inside a change: leave the current stage (history closed, its open stage tasks cancelled) and enter
    `to_stage` (owner, status, SLA target, stage tasks). The change re-routes afterwards."""
    session, case, at = ch.session, ch.case, ch.at
    ct = check_transition(case, to_stage)
    resolution.require(ct, case, to_stage)  # a complaint closes only with an agent-confirmed root cause (422)
    for h in session.execute(
        select(StageHistory).where(StageHistory.case_id == case.id, StageHistory.left_at.is_(None))
    ).scalars().all():
        h.left_at = at
        session.add(h)
    target = ct.stage(to_stage)
    if target is not None and target.final:
        handoffs = [t.name for t in open_handoff_tasks(session, case.id)]
        if handoffs:
            raise InvalidTransition(
                f"case {case.id} cannot move to {to_stage!r} while a handoff task is open: {', '.join(handoffs)}",
                allowed=allowed_transitions(case),
            )
    # Open stage tasks of the stage we leave are cancelled: they belong to that stage's work. A handoff is
    # not: it is the next owner's work and stays open until someone completes it.
    for t in session.execute(
        select(Task).where(Task.case_id == case.id, Task.status == TaskStatus.OPEN, Task.stage == case.stage,
                           Task.source == "stage", col(Task.kind) != "handoff")
    ).scalars():
        t.status = TaskStatus.CANCELLED
        session.add(t)
    from_stage = case.stage
    history, tasks = stage_entry(case, ct, to_stage, ch.actor, at)
    history.from_stage = from_stage
    session.add(StageHistory(**vars(history)))
    session.add_all(Task(**vars(t)) for t in tasks)
    ch.reroute(f"entered {to_stage}")


def set_resolution_code(ch: Change, code: str) -> None:
    """Inside a change: store the (checked) resolution code; the change's audit event records it."""
    ch.extra["resolution_code"] = code
    ch.case.resolution_code = code


def transition(
    session: Session, case_id: int, to_stage: str, expected_version: int, actor: str, reason: str | None = None,
    at: datetime | None = None, resolution_code: str | None = None,
) -> Case:
    current = get_case(session, case_id)
    ct = check_transition(current, to_stage)  # 422/409 before anything is claimed
    code = resolution.check_code(ct, resolution_code, to_stage)
    resolution.require(ct, current, to_stage, code)
    with change(session, case_id, expected_version, actor, "case.transitioned", at=at) as ch:
        if code:
            set_resolution_code(ch, code)
        move_stage(ch, to_stage)
        if reason:
            ch.extra["reason"] = reason
    return ch.case


def resolve_assignee(session: Session, assignee: str | None) -> int | None:
    """The user id of an active user named `assignee` (None for no assignee); 422 for anyone else."""
    if not assignee:
        return None
    user = session.execute(select(User).where(User.username == assignee)).scalar_one_or_none()
    if user is None or not user.active:
        raise ValidationFailed(f"unknown or inactive user {assignee!r}", field="assignee")
    return user.id


def assignee_name(session: Session, case: Case) -> str | None:
    user = session.get(User, case.assignee_id) if case.assignee_id else None
    return user.username if user else None


def assign(session: Session, case_id: int, assignee: str | None, expected_version: int, actor: str) -> Case:
    user_id = resolve_assignee(session, assignee)
    with change(session, case_id, expected_version, actor, "case.assigned") as ch:
        before = snapshot(ch.case, ["assignee_id", "version"])
        ch.case.assignee_id = user_id
        ch.audit(before=before, after={"assignee_id": user_id, "version": ch.case.version, "assignee": assignee})
    return ch.case


# Columns that routing reads and that a case type may also declare as fields: both must always say the same.
MIRRORED_FIELDS = ("category", "amount", "customer_tier")


def _mirror(ct: CaseTypeDef, changes: dict[str, Any], fields_patch: dict[str, Any]) -> None:
    """Make a patch change a mirrored value in the column and in `fields` together (issue 18).

    A top-level `category` must be one of the case type's choices (a case type without a category field takes
    none); `fields.customer_tier` also sets the `customer_tier` column, which the routing rules read.
    """
    declared = {f.name for f in ct.fields}
    for name in MIRRORED_FIELDS:
        if name in changes and name in fields_patch and changes[name] != fields_patch[name]:
            raise ValidationFailed(f"{name} and fields.{name} differ; send one of them", field=name)
        if name in changes and changes[name] is not None:
            if name in declared:
                fields_patch[name] = changes[name]  # validated below with the case type's field rules
            elif name == "category":
                raise ValidationFailed(f"case type {ct.name!r} has no category field", field="category")
    for name, value in validate_fields(ct, fields_patch, partial=True).items():
        fields_patch[name] = value
        if name in MIRRORED_FIELDS:
            changes[name] = value


def update_case(session: Session, case_id: int, patch: CasePatch, actor: str) -> Case:
    changes = patch.model_dump(exclude_unset=True, exclude={"version"})
    with change(session, case_id, patch.version, actor, "case.updated") as ch:
        case = ch.case
        ct = case_type_def(case)
        fields_patch = dict(changes.pop("fields", None) or {})
        _mirror(ct, changes, fields_patch)
        cleared = {n for n in MIRRORED_FIELDS if n in changes and changes[n] is None}
        if fields_patch or cleared:
            case.fields = {k: v for k, v in {**case.fields, **fields_patch}.items() if k not in cleared}
        for key, value in changes.items():
            setattr(case, key, value)
        ch.reroute("facts changed", when_changed=FACT_FIELDS)
    return ch.case


def add_note(session: Session, case_id: int, body: str, actor: str, expected_version: int | None = None) -> Note:
    with change(session, case_id, expected_version, actor, "note.added") as ch:
        note = Note(case_id=case_id, author=actor, body=body)
        session.add(note)
        session.flush()
        ch.audit(entity=f"note:{note.id}", after={"body": body[:AUDIT_TEXT_CHARS], "version": ch.case.version})
    return note


def add_task(session: Session, case_id: int, data: TaskIn, actor: str) -> Task:
    with change(session, case_id, data.version, actor, "task.added") as ch:
        if data.role and data.role not in get_registry().org.role_names:
            raise ValidationFailed(f"unknown role {data.role!r}", field="role")
        from casemgr.casetypes.sops import link_problem

        sop_problem = link_problem(data.sop, get_registry().policies_dir) if data.sop else None
        if sop_problem:
            raise ValidationFailed(sop_problem, field="sop")
        task = Task(case_id=case_id, name=data.name, kind=data.kind, stage=ch.case.stage, role=data.role,
                    sop=data.sop, source="user", due_at=data.due_at)
        session.add(task)
        session.flush()
        ch.audit(entity=f"task:{task.id}",
                 after={"name": task.name, "kind": task.kind, "role": task.role, "version": ch.case.version})
    return task


def complete_task(session: Session, case_id: int, task_id: int, actor: str, expected_version: int | None = None) -> Task:
    task = session.get(Task, task_id)
    if task is None or task.case_id != case_id:
        raise NotFound(f"task {task_id} not found on case {case_id}")
    if task.status != TaskStatus.OPEN:
        raise InvalidTransition(f"task {task_id} is already {task.status}")
    with change(session, case_id, expected_version, actor, "task.completed") as ch:
        task.status = TaskStatus.DONE
        task.completed_at = now()
        task.completed_by = actor
        if task.sop:  # the work instruction it was done under (issue 22)
            from casemgr.casetypes.sops import current_version

            task.sop_version = current_version(session)
        session.add(task)
        ch.audit(entity=f"task:{task.id}", before={"status": TaskStatus.OPEN},
                 after={"status": TaskStatus.DONE, "version": ch.case.version,
                        **({"sop_version": task.sop_version} if task.sop_version else {})})
    return task


# ---------------------------------------------------------------- queries


# Untrusted cursors are checked in one place (casemgr.cases.cursor): malformed ones are a 400.
_encode_cursor = cursor_codec.encode
_decode_cursor = cursor_codec.decode


LIST_VIEW_DEFERRED = ("description", "fields", "tags", "ai", "contract", "rules_result")


def list_cases(
    session: Session, filters: CaseFilters, limit: int = 50, cursor: str | None = None, *, summary: bool = False,
) -> tuple[list[Case], str | None]:
    """Keyset-paginated, ordered by SLA due time (cases without a due time last), then id.

    summary=True leaves out the text and JSON columns a list view does not show (decoding them was a fifth of
    the queue page's time); touching one of them on a returned case raises instead of querying per row.
    """
    q = select(Case)
    if summary:
        q = q.options(*(defer(getattr(Case, name), raiseload=True) for name in LIST_VIEW_DEFERRED))
    f = filters
    if f.case_type:
        q = q.where(Case.case_type == f.case_type)
    if f.stage:
        q = q.where(Case.stage == f.stage)
    if f.queue:
        q = q.where(Case.queue == f.queue)
    if f.priority:
        q = q.where(Case.priority == f.priority)
    if f.status:
        q = q.where(Case.status == f.status)
    if f.category:
        q = q.where(Case.category == f.category)
    if f.sla_state:
        q = q.where(Case.sla_state == f.sla_state)
    if f.assignee:
        if f.assignee == "none":
            q = q.where(Case.assignee_id.is_(None))
        else:
            uid = session.execute(select(User.id).where(User.username == f.assignee)).scalar_one_or_none()
            q = q.where(Case.assignee_id == (uid if uid is not None else -1))
    if f.text and f.text.strip():
        from casemgr.cases.search import text_condition

        q = q.where(text_condition(f.text, session.get_bind().dialect.name))
    # Two index-ordered reads instead of one ORDER BY (sla_due_at IS NULL), ...: that expression defeats the
    # (…, sla_due_at, id) indexes and sorts every matching row (seconds at 1M cases). Cases with a due time
    # come first, then the rest by id; the cursor says which part a page continues in.
    c_due, c_id = _decode_cursor(cursor) if cursor else (None, None)
    rows: list[Case] = []
    if cursor is None or c_due is not None:
        q1 = q.where(Case.sla_due_at.is_not(None))
        if c_due is not None:
            q1 = q1.where(or_(Case.sla_due_at > c_due, and_(Case.sla_due_at == c_due, Case.id > c_id)))
        rows = list(session.execute(q1.order_by(Case.sla_due_at, Case.id).limit(limit + 1)).scalars().all())
    if len(rows) <= limit:
        q2 = q.where(Case.sla_due_at.is_(None))
        if c_due is None and c_id is not None:
            q2 = q2.where(Case.id > c_id)
        rows += list(session.execute(q2.order_by(Case.id).limit(limit + 1 - len(rows))).scalars().all())
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = _encode_cursor(last.sla_due_at, last.id or 0)
    return rows, next_cursor


def list_tasks(session: Session, case_id: int, *, limit: int | None = None, offset: int = 0) -> list[Task]:
    get_case(session, case_id)
    q = select(Task).where(Task.case_id == case_id).order_by(Task.id).offset(offset).limit(limit)
    return list(session.execute(q).scalars().all())


def list_notes(session: Session, case_id: int, *, limit: int | None = None, offset: int = 0) -> list[Note]:
    get_case(session, case_id)
    q = select(Note).where(Note.case_id == case_id).order_by(Note.id).offset(offset).limit(limit)
    return list(session.execute(q).scalars().all())
