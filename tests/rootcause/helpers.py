"""Closed complaints with a confirmed cause at a chosen time, as the case service records them."""

from __future__ import annotations

from datetime import datetime, timedelta

from casemgr.cases import service
from casemgr.cases.models import Case
from casemgr.cases.schemas import CaseCreate
from casemgr.db import write_session


def closed_complaint(code: str, closed_at: datetime, *, product: str | None = None, issue: str | None = None,
                     case_type: str = "complaint") -> int:
    """A complaint opened two hours before `closed_at`, triaged, and closed with `code`; `issue` stands for what
    the AI classification stored (cases.ai.classification.intent)."""
    t0 = closed_at - timedelta(hours=2)
    with write_session() as s:
        case = service.create_case(s, CaseCreate(case_type=case_type, subject=f"{code} {product}",
                                                 category=product), actor="user:agent", created_at=t0)
        if issue:
            case.ai = {"classification": {"intent": issue, "category": product}}
            s.add(case)
            s.flush()
        assert case.id is not None
        cid = case.id
        case = service.transition(s, cid, "triage", case.version, "user:agent", at=t0 + timedelta(hours=1))
        service.transition(s, cid, "closed", case.version, "user:agent", at=closed_at, resolution_code=code)
    return cid


def get(cid: int) -> Case:
    from casemgr.db import read_session

    with read_session() as s:
        c = s.get(Case, cid)
        assert c is not None
        return c
