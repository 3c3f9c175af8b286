"""Demo data (issue 22): every closed demo complaint carries a resolution code, so the root-cause figures show
something on a fresh demo; other types and open complaints carry none."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select

from casemgr.cases.models import Case
from casemgr.casetypes.registry import get_registry
from casemgr.db import read_session


def test_closed_demo_complaints_have_codes() -> None:
    from casemgr.demo import seed_cases

    seed_cases(n_complaints=60, n_contracts=10)
    with read_session() as s:
        rows = s.execute(select(Case.case_type, Case.status, Case.resolution_code)).all()
    closed = [code for ct, status, code in rows if ct == "complaint" and status == "closed"]
    assert closed and all(closed), "every closed complaint has a code"
    assert set(closed) <= {c.name for c in get_registry().get("complaint").resolution_codes}
    assert len(Counter(closed)) >= 3  # several causes recur, not one
    assert not [code for ct, status, code in rows if code and (ct != "complaint" or status != "closed")]
