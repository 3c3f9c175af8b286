"""Process-mining event log: one event per stage entered (plus, optionally, SLA and work events from the audit
trail), as XES (IEEE 1849, loads in pm4py/ProM/Disco) or CSV. Streams: memory stays flat at millions of events."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import IO, NamedTuple
from xml.sax.saxutils import quoteattr

from sqlalchemy import select
from sqlmodel import Session

from casemgr import csvsafe
from casemgr.audit.models import AuditEvent
from casemgr.cases.models import Case, StageHistory

# Audit actions that are process activities in their own right (the rest is data edits).
AUDIT_ACTIVITIES = ("sla.at_risk", "sla.breached", "sla.escalated", "sla.paused", "sla.resumed", "case.assigned",
                    "task.completed", "note.added", "contract.renewal_reminder")


class Event(NamedTuple):
    case_id: int
    ts: datetime
    order: int
    activity: str
    resource: str


def _utc(ts: datetime) -> datetime:
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)


def _stage_events(session: Session) -> Iterator[Event]:
    q = select(StageHistory.case_id, StageHistory.entered_at, StageHistory.id, StageHistory.stage, StageHistory.actor) \
        .order_by(StageHistory.case_id, StageHistory.entered_at, StageHistory.id)
    for cid, ts, i, stage, actor in session.execute(q).yield_per(20_000):
        yield Event(cid, _utc(ts), i, stage, actor)


def _audit_events(session: Session) -> Iterator[Event]:
    q = select(AuditEvent.case_id, AuditEvent.ts, AuditEvent.seq, AuditEvent.action, AuditEvent.actor) \
        .where(AuditEvent.case_id.is_not(None), AuditEvent.action.in_(AUDIT_ACTIVITIES)) \
        .order_by(AuditEvent.case_id, AuditEvent.ts, AuditEvent.seq)
    for cid, ts, seq, action, actor in session.execute(q).yield_per(20_000):
        yield Event(cid, _utc(ts), 10**12 + seq, action, actor)


def iter_events(session: Session, *, include_audit: bool = False) -> Iterator[Event]:
    streams = [_stage_events(session)]
    if include_audit:
        streams.append(_audit_events(session))
    yield from heapq.merge(*streams, key=lambda e: (e.case_id, e.ts, e.order))


def _case_info(session: Session) -> dict[int, tuple[str, str]]:
    return {cid: (ref or str(cid), ct) for cid, ref, ct in session.execute(select(Case.id, Case.reference, Case.case_type))}


def _xes_ts(ts: datetime) -> str:
    return ts.isoformat(timespec="milliseconds")


def write_xes(session: Session, fh: IO[str], *, include_audit: bool = False) -> int:
    info = _case_info(session)
    w = fh.write
    w('<?xml version="1.0" encoding="UTF-8"?>\n'
      '<log xes.version="1.0" xes.features="nested-attributes" xmlns="http://www.xes-standard.org/">\n'
      '<extension name="Concept" prefix="concept" uri="http://www.xes-standard.org/concept.xesext"/>\n'
      '<extension name="Time" prefix="time" uri="http://www.xes-standard.org/time.xesext"/>\n'
      '<extension name="Organizational" prefix="org" uri="http://www.xes-standard.org/org.xesext"/>\n'
      '<extension name="Lifecycle" prefix="lifecycle" uri="http://www.xes-standard.org/lifecycle.xesext"/>\n'
      '<global scope="trace"><string key="concept:name" value="__INVALID__"/></global>\n'
      '<global scope="event"><string key="concept:name" value="__INVALID__"/>'
      '<date key="time:timestamp" value="1970-01-01T00:00:00.000+00:00"/></global>\n'
      '<classifier name="Activity" keys="concept:name"/>\n'
      '<string key="concept:name" value="casemgr"/>\n')
    current: int | None = None
    n = 0
    for ev in iter_events(session, include_audit=include_audit):
        if ev.case_id != current:
            if current is not None:
                w("</trace>\n")
            ref, ct = info.get(ev.case_id, (str(ev.case_id), ""))
            w(f'<trace><string key="concept:name" value={quoteattr(ref)}/><int key="case:id" value="{ev.case_id}"/>'
              f'<string key="case:type" value={quoteattr(ct)}/>\n')
            current = ev.case_id
        w(f'<event><string key="concept:name" value={quoteattr(ev.activity)}/>'
          f'<date key="time:timestamp" value="{_xes_ts(ev.ts)}"/>'
          f'<string key="org:resource" value={quoteattr(ev.resource)}/>'
          f'<string key="lifecycle:transition" value="complete"/></event>\n')
        n += 1
    if current is not None:
        w("</trace>\n")
    w("</log>\n")
    return n


def write_csv(session: Session, fh: IO[str], *, include_audit: bool = False) -> int:
    info = _case_info(session)
    out = csvsafe.Writer(fh)  # formulas neutralised
    out.writerow(["case_id", "reference", "case_type", "activity", "timestamp", "resource"])
    n = 0
    for ev in iter_events(session, include_audit=include_audit):
        ref, ct = info.get(ev.case_id, (str(ev.case_id), ""))
        out.writerow([ev.case_id, ref, ct, ev.activity, ev.ts.isoformat(), ev.resource])
        n += 1
    return n
