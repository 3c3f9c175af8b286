"""New cases from the intake API, stored by group commit (casemgr.groupcommit).

The request thread plans the case outside any transaction: validation, first stage and its tasks, the rules
decision, the message row and the audit content (casemgr.cases.service.plan_case and
casemgr.cases.routing.apply_decision, the same functions create_case and route_case use). The writer thread then
stores a whole batch with one INSERT per table: duplicates of earlier deliveries are recognised by Message-ID
first, ids are reserved up front, audit events are chained in order. A case opened here is indistinguishable
from one opened by intake.service._store (tests/intake/test_group_commit.py compares them row by row).

Only the common case takes this path: a new case without attachments, threading reference, inline AI or
acknowledgement mail. Everything else goes through intake.service one message at a time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select

from casemgr.audit.service import PendingEvent, append_events
from casemgr.cases.models import Case, Party, StageHistory, Task
from casemgr.cases.routing import apply_decision, evaluate_rules
from casemgr.cases.schemas import CaseCreate
from casemgr.cases.service import NewCase, assign_case_id, created_event_after, plan_case
from casemgr.config import get_settings
from casemgr.db import allocate_id_ranges, draft, insert_rows, row_of, table_of, write_session
from casemgr.groupcommit import GroupCommit
from casemgr.intake.models import Message
from casemgr.intake.outbound import PlannedAck, acks_allowed
from casemgr.intake.parse import ParsedMessage
from casemgr.intake.service import IntakeResult, message_draft
from casemgr.jobs.models import Job
from casemgr.limits import AUDIT_SUBJECT_CHARS


@dataclass
class PlannedIntake:
    pm: ParsedMessage
    raw: bytes
    channel: str
    actor: str
    meta: dict[str, Any]
    new: NewCase
    rule_tasks: list[SimpleNamespace]
    routed_before: dict[str, Any]
    routed_after: dict[str, Any]
    store_alone: Callable[[], IntakeResult] = field(repr=False)  # the ordinary path, if the batch fails
    audit_extra: dict[str, Any] = field(default_factory=dict)  # flags shown on message.received (mail)
    ack: PlannedAck | None = None  # the acknowledgement mail, built with a stand-in reference (mail)


def plan(pm: ParsedMessage, raw: bytes, data: CaseCreate, *, channel: str, actor: str, meta: dict[str, Any],
         store_alone: Callable[[], IntakeResult], audit_extra: dict[str, Any] | None = None,
         ack: PlannedAck | None = None) -> PlannedIntake:
    """Everything about the new case that needs no database (raises ValidationFailed like create_case)."""
    new = plan_case(data, actor)
    decision = evaluate_rules(new.case)
    tasks, before, after = apply_decision(new.case, decision, {t.name for t in new.tasks}, reason="created")
    return PlannedIntake(pm=pm, raw=raw, channel=channel, actor=actor, meta=meta, new=new, rule_tasks=tasks,
                         routed_before=before, routed_after=after, store_alone=store_alone,
                         audit_extra=audit_extra or {}, ack=ack)


def _insert(session: Any, table: Any, rows: list[dict[str, Any]]) -> None:
    insert_rows(session, table, rows)


def store_many(items: Sequence[PlannedIntake]) -> list[IntakeResult]:
    """One transaction for the whole batch; results in the order of `items`."""
    with write_session() as session:
        return store_in(session, items)


def store_in(session: Any, items: Sequence[PlannedIntake], *, unseen: bool = False) -> list[IntakeResult]:
    """Store the batch in the caller's write transaction; results in the order of `items`.

    `unseen`: the caller checked in this transaction that no item's Message-ID is stored yet (the mail batch
    does, to send those through the ordinary path), so the lookup of earlier deliveries is skipped.
    """
    results: list[IntakeResult | None] = [None] * len(items)
    wanted = [it.pm.message_id for it in items]
    earlier = {} if unseen else {
        r.message_id: r for r in session.execute(
            select(Message.message_id, Message.id, Message.case_id, Case.reference)
            .outerjoin(Case, Case.id == Message.case_id).where(Message.message_id.in_(wanted))
        ).all()
    }
    fresh: list[int] = []
    first_of: dict[str, int] = {}
    for i, it in enumerate(items):
        mid = it.pm.message_id
        if mid in earlier:
            r = earlier[mid]
            results[i] = IntakeResult("duplicate", case_id=r.case_id, reference=r.reference,
                                      reason=f"message {mid} was already stored", message_pk=r.id)
        elif mid in first_of:  # the same submission twice in one batch: the second is a duplicate
            continue
        else:
            first_of[mid] = i
            fresh.append(i)
    acks = [i for i in fresh if items[i].ack is not None]
    case_ids, all_message_ids, all_party_ids = allocate_id_ranges(session, [
        (table_of(Case), len(fresh)), (table_of(Message), len(fresh) + len(acks)),
        (table_of(Party), sum(1 for i in fresh if items[i].new.party))])
    message_ids, ack_ids = all_message_ids[:len(fresh)], dict(zip(acks, all_message_ids[len(fresh):],
                                                                   strict=True))
    party_ids = iter(all_party_ids)
    parties: list[dict[str, Any]] = []
    cases: list[dict[str, Any]] = []
    histories: list[dict[str, Any]] = []
    tasks: list[dict[str, Any]] = []
    messages: list[dict[str, Any]] = []
    jobs: list[dict[str, Any]] = []
    acked: list[dict[str, Any]] = []
    ack_rows: list[tuple[int, PlannedIntake, Any, Any, int]] = []
    events: list[PendingEvent] = []
    for i, case_id, msg_pk in zip(fresh, case_ids, message_ids, strict=True):
        it = items[i]
        new, case = it.new, it.new.case
        assign_case_id(new, case_id)
        if new.party is not None:
            new.party.id = next(party_ids)
            case.party_id = new.party.id
            parties.append(row_of(new.party))
        for task in it.rule_tasks:
            task.case_id = case_id
        cases.append(row_of(case))
        histories.append(row_of(new.history))
        tasks.extend(row_of(t) for t in (*new.tasks, *it.rule_tasks))
        msg = message_draft(it.pm, it.raw, it.channel, case_id, it.meta)
        msg.id = msg_pk
        messages.append(row_of(msg))
        jobs.append(row_of(draft(Job, kind="ai.enrich", payload={"case_id": case_id, "attempt": 0},
                                 idempotency_key=f"ai.enrich:{case_id}:0")))
        events += [
            PendingEvent(it.actor, "case.created", case_id, "case", after=created_event_after(case), ts=new.at),
            PendingEvent(it.actor, "case.routed", case_id, "case", before=it.routed_before,
                         after=it.routed_after),
            PendingEvent(it.actor, "message.received", case_id, f"message:{msg_pk}", after={
                "message_id": it.pm.message_id, "channel": it.channel, "sender": it.pm.sender,
                "subject": it.pm.subject[:AUDIT_SUBJECT_CHARS], "attachments": [], **it.audit_extra}),
        ]
        results[i] = IntakeResult("case", case_id=case_id, reference=case.reference, message_pk=msg_pk)
        if it.ack is not None:
            ack_rows.append((i, it, case, msg, ack_ids[i]))
    # After the loop, one rate-limit upsert for the batch; each case's events stay in the ordinary path's order.
    allowed = acks_allowed(session, [msg for _, _, _, msg, _ in ack_rows])
    for (i, it, case, _msg, ack_pk), ok in zip(ack_rows, allowed, strict=True):
        assert it.ack is not None
        if not ok:
            continue
        row = it.ack.row(case, ack_pk)
        acked.append(row)
        jobs.append(row_of(draft(Job, kind="mail.send", payload={"message_pk": ack_pk},
                                 idempotency_key=f"mail.send:{ack_pk}")))
        events.append(PendingEvent("system:intake", "message.ack_queued", case.id, f"message:{ack_pk}",
                                   after={"to": row["recipients"][0], "subject": row["subject"],
                                          "message_id": row["message_id"]}))
        done = results[i]
        assert done is not None
        done.acknowledgement = "queued" if get_settings().smtp_relay_host else "outbox"
    # Parents before children: foreign keys are checked per statement.
    _insert(session, Party.__table__, parties)
    _insert(session, Case.__table__, cases)
    _insert(session, StageHistory.__table__, histories)
    _insert(session, Task.__table__, tasks)
    _insert(session, Message.__table__, messages + acked)
    _insert(session, Job.__table__, jobs)
    append_events(session, events)
    for i, it in enumerate(items):
        if results[i] is None:  # repeated within the batch: points at the case its first copy opened
            first = results[first_of[it.pm.message_id]]
            assert first is not None
            results[i] = IntakeResult("duplicate", case_id=first.case_id, reference=first.reference,
                                      reason=f"message {it.pm.message_id} was already stored",
                                      message_pk=first.message_pk)
    return [r for r in results if r is not None]


new_cases: GroupCommit[PlannedIntake, IntakeResult] = GroupCommit("intake", store_many, lambda it: it.store_alone())
