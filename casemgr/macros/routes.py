"""GET /api/macros, POST /api/cases/{id}/macros/{name} (preview or apply), and the case page's macro preview."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from casemgr.cases import service as cases
from casemgr.macros import service
from casemgr.macros.loader import get_macros
from casemgr.users.service import Principal
from casemgr.web.deps import ReadSession, WriteSession, page, require
from casemgr.web.pages_common import render

router = APIRouter(tags=["macros"])
pages = APIRouter(tags=["pages"], include_in_schema=False)


class MacroOut(BaseModel):
    name: str
    title: str
    description: str
    case_types: list[str]
    stages: list[str]
    reply_template: str
    set: dict[str, Any]
    tasks: list[str]
    transition: str | None


class MacroApplyIn(BaseModel):
    version: int = Field(ge=1, description="The case version you read; a stale version gets 409")
    reply: str | None = Field(default=None, max_length=50_000,
                              description="The reply as the agent edited it; omit for the rendered reply, \"\" to "
                                          "send none")
    preview: bool = Field(default=False, description="Render only: nothing changes, nothing is sent")


class MacroApplyOut(BaseModel):
    applied: bool
    case_id: int
    version: int
    reply: str
    changes: dict[str, Any]
    tasks: list[str]
    transition: str | None
    message_id: int | None = None


def _out(m: Any) -> MacroOut:
    return MacroOut(name=m.name, title=m.title, description=m.description, case_types=m.case_types, stages=m.stages,
                    reply_template=m.reply, set=m.set.model_dump(exclude_none=True, exclude_defaults=True),
                    tasks=[t.name for t in m.tasks], transition=m.transition)


@router.get("/api/macros", response_model=list[MacroOut])
def list_macros(session: ReadSession, _: Annotated[Principal, Depends(require("macros.read"))],
                case_id: Annotated[int | None, Query(ge=1, description="only macros that fit this case")] = None,
                ) -> list[MacroOut]:
    if case_id is not None:
        return [_out(m) for m in service.for_case(cases.get_case(session, case_id))]
    return [_out(m) for m in sorted(get_macros().values(), key=lambda m: m.name)]


@router.post("/api/cases/{case_id}/macros/{name}", response_model=MacroApplyOut)
def apply_macro(case_id: int, name: str, data: MacroApplyIn, session: WriteSession,
                who: Annotated[Principal, Depends(require("macros.apply"))]) -> MacroApplyOut:
    if data.preview:
        pv = service.preview(session, case_id, name, who)
        case = cases.get_case(session, case_id)
        return MacroApplyOut(applied=False, case_id=case_id, version=case.version, reply=pv.reply, changes=pv.changes,
                             tasks=pv.tasks, transition=pv.transition)
    case, pv, msg = service.apply(session, case_id, name, data.version, who, reply=data.reply)
    return MacroApplyOut(applied=True, case_id=case_id, version=case.version,
                         reply=pv.reply if data.reply is None else data.reply, changes=pv.changes, tasks=pv.tasks,
                         transition=pv.transition, message_id=getattr(msg, "id", None))


@pages.get("/cases/{case_id}/macro-preview", response_class=HTMLResponse)
def preview_fragment(request: Request, case_id: int, session: ReadSession,
                     who: Annotated[Principal, Depends(page("macros.apply"))],
                     name: Annotated[str, Query(alias="macro", max_length=80)] = "") -> Response:
    """The macro's rendered reply in an editable box, and what applying it changes (htmx fragment)."""
    case = cases.get_case(session, case_id)
    if not name:
        return HTMLResponse('<div id="macro-preview"></div>')
    pv = service.preview(session, case_id, name, who)
    return render(request, "_macro_preview.html", {"pv": pv, "c": case})
