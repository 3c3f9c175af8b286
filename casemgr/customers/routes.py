"""GET /api/customers/{email}/cases: a customer's cases, open and closed, and known addresses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from pydantic import BaseModel

from casemgr.cases.enums import CaseStatus
from casemgr.customers import service
from casemgr.users.service import Principal
from casemgr.web.deps import ReadSession, require

router = APIRouter(prefix="/api", tags=["customers"])


class CustomerCase(BaseModel):
    id: int
    reference: str | None
    case_type: str
    subject: str
    stage: str
    status: str
    priority: str
    created_at: datetime
    closed_at: datetime | None
    merged_into_id: int | None


class CustomerCases(BaseModel):
    email: str
    names: list[str]
    addresses: list[str]
    open: int
    closed: int
    cases: list[CustomerCase]


@router.get("/customers/{email}/cases", response_model=CustomerCases)
def customer_cases(email: Annotated[str, Path(min_length=3, max_length=320, pattern=r"^[^@\s]+@[^@\s]+$")],
                   session: ReadSession, _: Annotated[Principal, Depends(require("customers.read"))]) -> CustomerCases:
    v = service.customer(session, email)
    items = [CustomerCase(id=c.id or 0, reference=c.reference, case_type=c.case_type, subject=c.subject,
                          stage=c.stage, status=c.status, priority=c.priority, created_at=c.created_at,
                          closed_at=c.closed_at, merged_into_id=c.merged_into_id) for c in v.cases]
    return CustomerCases(email=v.email, names=v.names, addresses=v.addresses,
                         open=sum(1 for c in v.cases if c.status == CaseStatus.OPEN),
                         closed=sum(1 for c in v.cases if c.status != CaseStatus.OPEN), cases=items)
