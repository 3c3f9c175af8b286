"""Thin HTTP routes for cases: validate input, call the service, shape output."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from casemgr.audit import service as audit
from casemgr.cases import service
from casemgr.cases.schemas import (
    AssignIn,
    CaseCreate,
    CaseFilters,
    CaseOut,
    CasePage,
    CasePatch,
    NoteIn,
    NoteOut,
    TaskCompleteIn,
    TaskIn,
    TaskOut,
    TransitionIn,
)
from casemgr.casetypes.registry import get_registry
from casemgr.users.service import Principal
from casemgr.web.deps import ReadSession, WriteSession, require
from casemgr.web.paging import DEFAULT_LIMIT, MAX_LIMIT, Page

router = APIRouter(prefix="/api", tags=["cases"])

Reader = Annotated[Principal, Depends(require("cases.read"))]
Writer = Annotated[Principal, Depends(require("cases.write"))]
Assigner = Annotated[Principal, Depends(require("cases.assign"))]


@router.get("/case-types")
def case_types(_: Reader) -> list[dict[str, Any]]:
    reg = get_registry()
    return [ct.model_dump() for ct in reg.case_types.values()]


@router.get("/cases", response_model=CasePage)
def list_cases(
    session: ReadSession,
    _: Reader,
    case_type: Annotated[str | None, Query(alias="type", max_length=50)] = None,
    stage: Annotated[str | None, Query(max_length=50)] = None,
    queue: Annotated[str | None, Query(max_length=80)] = None,
    assignee: Annotated[str | None, Query(max_length=100)] = None,
    priority: Annotated[str | None, Query(max_length=20)] = None,
    status: Annotated[str | None, Query(max_length=20)] = None,
    category: Annotated[str | None, Query(max_length=80)] = None,
    sla_state: Annotated[str | None, Query(max_length=20)] = None,
    text: Annotated[str | None, Query(alias="q", max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> CasePage:
    filters = CaseFilters(case_type=case_type, stage=stage, queue=queue, assignee=assignee, priority=priority,
                          status=status, category=category, sla_state=sla_state, text=text)
    rows, next_cursor = service.list_cases(session, filters, limit=limit, cursor=cursor)
    return CasePage(items=[CaseOut.model_validate(r) for r in rows], next_cursor=next_cursor)


@router.post("/cases", response_model=CaseOut, status_code=201)
def create_case(data: CaseCreate, session: WriteSession, who: Writer) -> CaseOut:
    return CaseOut.model_validate(service.create_case(session, data, actor=who.actor))


@router.get("/cases/{case_id}", response_model=CaseOut)
def get_case(case_id: int, session: ReadSession, _: Reader) -> CaseOut:
    return CaseOut.model_validate(service.get_case(session, case_id))


@router.patch("/cases/{case_id}", response_model=CaseOut)
def patch_case(case_id: int, data: CasePatch, session: WriteSession, who: Writer) -> CaseOut:
    return CaseOut.model_validate(service.update_case(session, case_id, data, actor=who.actor))


@router.get("/cases/{case_id}/transitions")
def allowed_transitions(case_id: int, session: ReadSession, _: Reader) -> dict[str, Any]:
    case = service.get_case(session, case_id)
    return {"stage": case.stage, "allowed": service.allowed_transitions(case), "version": case.version}


@router.post("/cases/{case_id}/transitions", response_model=CaseOut)
def transition(case_id: int, data: TransitionIn, session: WriteSession, who: Writer) -> CaseOut:
    case = service.transition(session, case_id, data.to_stage, data.version, actor=who.actor, reason=data.reason,
                              resolution_code=data.resolution_code)
    return CaseOut.model_validate(case)


@router.post("/cases/{case_id}/assign", response_model=CaseOut)
def assign(case_id: int, data: AssignIn, session: WriteSession, who: Assigner) -> CaseOut:
    return CaseOut.model_validate(service.assign(session, case_id, data.assignee, data.version, actor=who.actor))


@router.get("/cases/{case_id}/notes", response_model=list[NoteOut])
def notes(case_id: int, session: ReadSession, _: Reader, page: Page) -> list[NoteOut]:
    return [NoteOut.model_validate(n) for n in service.list_notes(session, case_id, limit=page.limit,
                                                                  offset=page.offset)]


@router.post("/cases/{case_id}/notes", response_model=NoteOut, status_code=201)
def add_note(case_id: int, data: NoteIn, session: WriteSession, who: Writer) -> NoteOut:
    from casemgr.notifications.service import notify_note_mentions  # @mentions notify colleagues (issue 20)

    note = service.add_note(session, case_id, data.body, who.actor, data.version)
    notify_note_mentions(session, case_id, data.body, who.username, who.user_id)
    return NoteOut.model_validate(note)


@router.get("/cases/{case_id}/tasks", response_model=list[TaskOut])
def tasks(case_id: int, session: ReadSession, _: Reader, page: Page) -> list[TaskOut]:
    return [TaskOut.model_validate(t) for t in service.list_tasks(session, case_id, limit=page.limit,
                                                                  offset=page.offset)]


@router.post("/cases/{case_id}/tasks", response_model=TaskOut, status_code=201)
def add_task(case_id: int, data: TaskIn, session: WriteSession, who: Writer) -> TaskOut:
    return TaskOut.model_validate(service.add_task(session, case_id, data, who.actor))


@router.post("/cases/{case_id}/tasks/{task_id}/complete", response_model=TaskOut)
def complete_task(case_id: int, task_id: int, data: TaskCompleteIn, session: WriteSession, who: Writer) -> TaskOut:
    return TaskOut.model_validate(service.complete_task(session, case_id, task_id, who.actor, data.version))


@router.get("/cases/{case_id}/audit")
def case_audit(case_id: int, session: ReadSession, _: Reader, page: Page) -> list[dict[str, Any]]:
    service.get_case(session, case_id)
    return [
        {"seq": e.seq, "ts": e.ts.isoformat(), "actor": e.actor, "action": e.action, "entity": e.entity,
         "before": e.before, "after": e.after}
        for e in audit.events_for_case(session, case_id, limit=page.limit, offset=page.offset)
    ]
