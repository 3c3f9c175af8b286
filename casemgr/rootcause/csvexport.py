"""The product owner's CSV: one row per case type, resolution code, product, issue and queue, with the cases of
the period and of the period before (formulas neutralised by casemgr.csvsafe)."""

from __future__ import annotations

import io
from collections import Counter
from datetime import datetime
from typing import IO

from sqlmodel import Session

from casemgr import csvsafe
from casemgr.casetypes.registry import get_registry
from casemgr.clock import now
from casemgr.rootcause.report import Window, coded_types, rows

HEADER = ["period_from", "period_to", "case_type", "resolution_code", "resolution", "product", "issue", "queue",
          "cases", "previous_cases", "change"]


def write_csv(session: Session, fh: IO[str], *, days: int = 30, case_type: str | None = None,
              at: datetime | None = None) -> int:
    window = Window.ending(at or now(), days)
    types = coded_types(case_type)
    reg = get_registry()
    labels = {(t, c.name): c.label for t in types for c in reg.case_types[t].resolution_codes}
    cur: Counter[tuple[str, str, str, str, str]] = Counter()
    prev: Counter[tuple[str, str, str, str, str]] = Counter()
    for ct, code, product, issue, queue, d, n in rows(session, window, types):
        (cur if d >= window.start else prev)[(ct, code, product, issue, queue)] += n
    out = csvsafe.Writer(fh)
    out.writerow(HEADER)
    keys = sorted(set(cur) | set(prev), key=lambda k: (-cur[k], -prev[k], k))
    for ct, code, product, issue, queue in keys:
        key = (ct, code, product, issue, queue)
        out.writerow([window.start.isoformat(), window.end.isoformat(), ct, code, labels.get((ct, code), code),
                      product, issue, queue, cur[key], prev[key], cur[key] - prev[key]])
    return len(keys)


def csv_text(session: Session, *, days: int = 30, case_type: str | None = None, at: datetime | None = None) -> str:
    buf = io.StringIO()
    write_csv(session, buf, days=days, case_type=case_type, at=at)
    return buf.getvalue()
