"""Conformance figures per case type, and the snapshot the dashboard reads (refreshed by the worker job
`conformance.refresh`; computed on first use when no worker has run yet)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session

from casemgr.audit.service import canonical
from casemgr.casetypes.registry import get_registry
from casemgr.clock import now
from casemgr.conformance.analysis import Trace, analyse
from casemgr.conformance.log import iter_traces, traces_in_chunks
from casemgr.conformance.model import Design, design_of
from casemgr.metrics.models import MetricSnapshot

SNAPSHOT = "conformance"


def designs(case_type: str | None = None) -> dict[str, Design]:
    reg = get_registry()
    names = [reg.get(case_type).name] if case_type else list(reg.case_types)
    return {name: design_of(reg.case_types[name]) for name in names}


def pinned_designs(session: Session | None) -> Callable[[Trace], Design | None]:
    """A case is replayed against its type as the case-types version it is pinned to designs it (issue 22: a
    running case stays on the version it started with); one Design per (version, type), built once. Without a
    `session`, a version not yet cached is read in a read transaction of its own."""
    from casemgr.casetypes.versions import registry_for

    built: dict[tuple[str | None, str], Design | None] = {}

    def of(trace: Trace) -> Design | None:
        key = (trace.version, trace.case_type)
        if key not in built:
            ct = registry_for(trace.version, session).case_types.get(trace.case_type)
            built[key] = design_of(ct) if ct is not None else None
        return built[key]

    return of


def report(session: Session, *, case_type: str | None = None, at: datetime | None = None) -> dict[str, Any]:
    """Every case in the event log, replayed against its type's designed transitions in the case-types version
    the case is pinned to (unknown type: 422)."""
    at = at or now()
    return _figures(iter_traces(session, case_type=case_type), pinned_designs(session), at, case_type)


def _figures(traces: Iterable[Trace], pinned: Callable[[Trace], Design | None], at: datetime,
             case_type: str | None = None) -> dict[str, Any]:
    return {"computed_at": at.isoformat(),
            "case_types": analyse(designs(case_type), traces, at.timestamp(), pinned=pinned)}


def refresh(*, at: datetime | None = None) -> dict[str, Any]:
    """Read in short read transactions (casemgr.conformance.log.traces_in_chunks), store in a short write
    transaction (a long one would block SQLite writers). The same figures as `report`, which reads in one."""
    from casemgr.db import write_session

    traces = traces_in_chunks()
    data = canonical(_figures(traces, pinned_designs(None), at or now()))
    stamp = datetime.fromisoformat(data["computed_at"])
    with write_session() as ws:
        snap = ws.get(MetricSnapshot, SNAPSHOT)
        if snap is None:
            ws.add(MetricSnapshot(name=SNAPSHOT, computed_at=stamp, data=data))
        else:
            snap.data, snap.computed_at = data, stamp
            ws.add(snap)
    return data  # type: ignore[no-any-return]


def snapshot(session: Session, case_type: str | None = None) -> dict[str, Any]:
    """The last stored figures (computed now when there are none), for one type or all."""
    snap = session.get(MetricSnapshot, SNAPSHOT)
    data = dict(snap.data) if snap is not None else refresh()
    if case_type:
        data = {**data, "case_types": {k: v for k, v in data["case_types"].items() if k == case_type}}
    return data
