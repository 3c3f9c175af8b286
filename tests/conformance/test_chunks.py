"""The worker's conformance refresh reads the event log one range of case ids per read transaction (issue 23: at
1M cases one read transaction replayed every case for 72 s). Its figures must be exactly those of the
one-transaction report."""

from __future__ import annotations

from datetime import timedelta

from casemgr.audit.service import canonical
from casemgr.cases import service as cases
from casemgr.clock import now
from casemgr.conformance import log, service
from casemgr.db import read_session, write_session

from .helpers import imported_case

T0 = now() - timedelta(days=4)


def _seed() -> list[int]:
    paths = [("complaint", ["intake", "triage", "resolution", "feedback", "closed"], True),
             ("complaint", ["intake", "investigation"], False),
             ("onboarding", ["hr_setup", "it_setup", "hr_setup"], False),
             ("complaint", ["intake", "closed"], True),
             ("complaint", ["intake", "triage", "triage", "resolution"], False),
             ("onboarding", ["hr_setup", "it_setup"], False),
             ("complaint", ["intake", "triage"], False)]
    ids = [imported_case(ct, stages, T0 + timedelta(hours=i), closed=closed)
           for i, (ct, stages, closed) in enumerate(paths)]
    # People's work on cases on both sides of a range boundary: the handoff delays read it per range too.
    for cid in (ids[1], ids[2], ids[3], ids[6]):
        with write_session() as s:
            cases.add_note(s, cid, "looked at it", "user:agent")
    return ids


def test_ranges_give_the_same_traces_and_figures_as_one_transaction(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    ids = _seed()
    with read_session() as s:
        whole = list(log.iter_traces(s))
        at = now()
        expected = canonical(service.report(s, at=at))
    stats: dict[str, int] = {}
    chunked = list(log.traces_in_chunks(chunk_cases=2, stats=stats))
    assert chunked == whole
    assert {t.case_id for t in chunked} >= set(ids) and any(t.work for t in chunked)
    first, last = min(t.case_id for t in whole), max(t.case_id for t in whole)
    assert stats["chunks"] == (last - first) // 2 + 1 and stats["chunks"] >= 4
    monkeypatch.setattr(log, "CHUNK_CASES", 2)
    assert service.refresh(at=at) == expected
    assert expected["case_types"]["complaint"]["cases"] >= 5


def test_each_range_is_its_own_read_transaction() -> None:
    """Work done on a case while the refresh is between two ranges is seen when the case's range is read: each
    range reads a snapshot of its own, not one held from the start (which would keep SQLite's WAL from being
    checkpointed past it for the whole refresh)."""
    ids = _seed()
    with read_session() as s:
        before = {t.case_id: len(t.work) for t in log.iter_traces(s)}
    stream = log.traces_in_chunks(chunk_cases=1)
    first = next(stream)
    assert first.case_id < ids[-1]
    with write_session() as s:
        cases.add_note(s, ids[-1], "worked on meanwhile", "user:agent")
    later = {t.case_id: len(t.work) for t in stream}
    assert later[ids[-1]] == before[ids[-1]] + 1
