"""JSON API for AI reply drafts: read the draft waiting on a case, and send a reply that started from it.

GET  /api/cases/{case_id}/draft-reply  the pending draft (text, confidence, evidence, sources), 404 when none
POST /api/cases/{case_id}/reply        {"body", "version", "ai_decision"?}: queue the reply (409 on a stale version);
                                       with `ai_decision` the draft's outcome and edit distance are recorded
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from casemgr.cases import service as cases
from casemgr.errors import NotFound, ValidationFailed
from casemgr.governance import draft_outcome
from casemgr.users.service import Principal
from casemgr.web.deps import ReadSession, WriteSession, require

router = APIRouter(prefix="/api", tags=["ai drafts"])

CaseReader = Annotated[Principal, Depends(require("cases.read"))]
CaseWriter = Annotated[Principal, Depends(require("cases.write"))]


class DraftOut(BaseModel):
    decision_id: int
    case_id: int
    text: str
    confidence: float | None
    evidence: list[str]
    sources: list[str]
    owner_role: str | None
    policy_version: str
    model_version: str | None


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    body: str = Field(min_length=1, max_length=50_000, description="The reply as the agent wrote or edited it")
    version: int = Field(ge=1, description="The case version you read; a stale version gets 409")
    ai_decision: int | None = Field(default=None, ge=1, description="The draft_reply decision the reply started "
                                                                     "from, to record its outcome and edit distance")


class DraftSent(BaseModel):
    decision_id: int
    edit_distance: float


class ReplyOut(BaseModel):
    case_id: int
    version: int
    message_id: int | None
    draft: DraftSent | None = None


@router.get("/cases/{case_id}/draft-reply", response_model=DraftOut)
def get_draft(case_id: int, session: ReadSession, _: CaseReader) -> DraftOut:
    cases.get_case(session, case_id)  # 404 for an unknown case
    d = draft_outcome.pending_draft(session, case_id)
    if d is None:
        raise NotFound(f"no AI reply draft is waiting on case {case_id}")
    p: dict[str, Any] = d.proposed or {}
    return DraftOut(decision_id=d.id or 0, case_id=case_id, text=str(p.get("text") or ""), confidence=d.confidence,
                    evidence=[str(e) for e in p.get("evidence") or []], sources=[str(e) for e in p.get("sources") or []],
                    owner_role=d.owner_role, policy_version=d.policy_version, model_version=d.model_version)


@router.post("/cases/{case_id}/reply", response_model=ReplyOut, status_code=201)
def send_reply(case_id: int, data: ReplyIn, session: WriteSession, who: CaseWriter) -> ReplyOut:
    from casemgr.intake.outbound import send_reply as queue_reply

    if not data.body.strip():
        raise ValidationFailed("the reply is empty", field="body")
    msg = queue_reply(session, case_id, data.body, who.actor, version=data.version)
    sent = None
    if data.ai_decision is not None:
        row = draft_outcome.record_sent(session, case_id, data.ai_decision, data.body, actor=who.actor,
                                        message_id=msg.id)
        sent = DraftSent(decision_id=row.id or 0, edit_distance=float(row.edit_distance or 0.0))
    case = cases.get_case(session, case_id)
    return ReplyOut(case_id=case_id, version=case.version, message_id=msg.id, draft=sent)
