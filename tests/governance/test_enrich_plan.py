"""AI results stored in bulk (casemgr.governance.enrich_plan) are the same as results applied case by case.

Issue 23: the worker plans each run on a plain copy of its case and stores a whole batch with a few statements.
These tests hold the batch writer to what the ordinary writer (enrich.apply_results) stores: the same case
fields and versions, decision rows, AI call records, audit events and rule tasks; a case changed meanwhile is
applied by the ordinary writer on its new state; the audit chain stays intact.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import select

from casemgr.ai.models import AICall
from casemgr.audit import service as audit
from casemgr.audit.models import AuditEvent
from casemgr.cases.models import Case, Task
from casemgr.db import read_session, write_session
from casemgr.governance import enrich, enrich_plan
from casemgr.governance.decide import sample_hit
from casemgr.governance.models import AIDecision
from casemgr.governance.service import output_of

from .util import StubProvider, policy
from .util import new_case as _new_case

TEXTS = [
    ("Charged twice", "My credit card was charged twice for the same purchase and the refund never arrived."),
    ("URGENT fraud", "Someone stole my identity and opened accounts in my name. This is urgent, I am losing money "
                     "every day and the bank will not help me. I will go to the regulator."),
    ("Mortgage", "My mortgage payment was applied to the wrong account and now I have a late fee of $45."),
    ("Collector", "The debt collector keeps calling me about a loan I already paid off in full last year."),
    ("Reporte", "Mi informe de crédito tiene un error y la agencia se niega a corregirlo después de tres disputas."),
    ("Thanks", "Thank you."),
]
CONTRACT = ("Master services agreement with Acme", "This Master Services Agreement is between Example Ltd and Acme "
            "Corp. The term is 12 months starting 1 March 2026 and renews automatically unless terminated with 60 "
            "days notice. Liability is unlimited. Governed by the laws of New York.")
VOLATILE = {"id", "case_id", "reference", "created_at", "updated_at", "stage_entered_at", "sla_due_at", "due_at",
            "run_id", "latency_ms", "enriched_at", "evaluated_at", "ts", "seq", "hash", "prev_hash", "party_id"}


@pytest.fixture(autouse=True)
def _worker_ai(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from casemgr.runtime import rebuild

    monkeypatch.setenv("CASEMGR_AI_INLINE", "false")
    rebuild()
    yield
    enrich.set_provider_factory(None)


def _queue(tag: str) -> list[int]:
    with write_session() as s:
        cases = [_new_case(s, subject=f"{subject}", description=body) for subject, body in TEXTS]
        cases.append(_new_case(s, subject=CONTRACT[0], description=CONTRACT[1], case_type="contract"))
        for case in cases:
            enrich.enrich_inline_or_enqueue(s, case)
        return [int(c.id) for c in cases]


def _drain() -> None:
    from casemgr.worker import Worker

    worker = Worker(schedule=False)
    while worker.run_one():
        pass


def _stable(value: Any, ids: dict[int, str]) -> Any:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k in VOLATILE:
                continue
            if k in ("decision_id", "ai_call_id") and isinstance(v, int):
                v = ids.get(v, v)
            out[k] = _stable(v, ids)
        return out
    if isinstance(value, list):
        return [_stable(v, ids) for v in value]
    if isinstance(value, datetime):
        return "<time>"
    if isinstance(value, str):
        value = re.sub(r"\b(?:CMP|CTR)-\d+\b", "<reference>", value)  # a reply draft quotes its case's reference
        return re.sub(r"ai_decision:(\d+)", lambda m: f"ai_decision:{ids.get(int(m.group(1)), '?')}", value)
    return value


def _record(case_id: int) -> dict[str, Any]:
    """Everything the worker stored about one case, ids replaced by their position on the case."""
    with read_session() as s:
        decisions = list(s.execute(select(AIDecision).where(AIDecision.case_id == case_id)
                                   .order_by(AIDecision.id)).scalars())
        calls = list(s.execute(select(AICall).where(AICall.case_id == case_id).order_by(AICall.id)).scalars())
        ids = {int(d.id or 0): f"decision#{i}" for i, d in enumerate(decisions)}
        for d in decisions:  # review sampling hashes the case id, which differs between the two sets
            assert d.sampled == (d.outcome == "applied" and sample_hit(case_id, d.kind, output_of(d).field,
                                                                         d.sample_rate or 0))
            assert not d.double_review or d.sampled  # the double-reviewed slice is drawn from the sampled ones
        call_ids = {int(c.id or 0): f"call:{c.capability}" for c in calls}
        events = list(s.execute(select(AuditEvent).where(AuditEvent.case_id == case_id)
                                .order_by(AuditEvent.seq)).scalars())
        tasks = list(s.execute(select(Task).where(Task.case_id == case_id)).scalars())
        case = s.get(Case, case_id)
        assert case is not None
        return {
            "case": _stable(case.model_dump(), ids),
            "decisions": [_stable({**d.model_dump(exclude={"sampled", "double_review", "review_status"}),
                                   "ai_call_id": call_ids.get(d.ai_call_id or 0),
                                   "review_status": "none" if d.review_status == "sampled" else d.review_status}, ids)
                          for d in decisions],
            # A reply draft's input is the case facts too (reference, dates): its hash differs between the two sets.
            "calls": [_stable({**c.model_dump(), **({"input_hash": "<case facts>"} if c.capability == "draft_reply"
                                                    else {})}, ids) for c in calls],
            "events": [_stable(e.model_dump(), ids) for e in events],
            "tasks": sorted((_stable(t.model_dump(), ids) for t in tasks), key=lambda t: t["name"]),
        }


def _spy_on_plan(monkeypatch: pytest.MonkeyPatch, real_plan: Any) -> list[int]:
    """The batch writer's planner, recording the cases it planned (the returned list fills as the worker runs)."""
    planned: list[int] = []

    def spy(*args: Any, **kw: Any) -> Any:
        p = real_plan(*args, **kw)
        if p is not None:
            planned.append(p.case_id)
        return p

    monkeypatch.setattr(enrich_plan, "plan", spy)
    return planned


def _both_writers(monkeypatch: pytest.MonkeyPatch) -> tuple[list[dict[str, Any]], list[dict[str, Any]], int]:
    """Enrich the same cases with the ordinary writer, then with the batch writer; (ordinary, batch, planned)."""
    real_plan = enrich_plan.plan
    monkeypatch.setattr(enrich_plan, "plan", lambda *a, **k: None)
    ordinary_ids = _queue("one")
    _drain()
    planned = _spy_on_plan(monkeypatch, real_plan)
    batch_ids = _queue("batch")
    _drain()
    return [_record(i) for i in ordinary_ids], [_record(i) for i in batch_ids], len(planned)


def test_the_batch_writer_stores_what_the_ordinary_writer_stores(monkeypatch: pytest.MonkeyPatch) -> None:
    ordinary, batch, planned = _both_writers(monkeypatch)
    assert planned == len(batch)  # every case of this set took the batch path
    assert {r["case"]["ai_status"] for r in batch} == {"ok"}
    assert any(d["outcome"] == "applied" for r in batch for d in r["decisions"])
    assert any(e["action"] == "ai.applied" for r in batch for e in r["events"])
    for one, many in zip(ordinary, batch, strict=True):
        assert many == one, _debug_diff(one, many)
    with read_session() as s:
        assert audit.verify(s).ok


def test_a_run_the_batch_writer_cannot_plan_is_applied_one_by_one(monkeypatch: pytest.MonkeyPatch) -> None:
    """An applied stage move is a transition (stage entry, tasks, SLA): the ordinary writer stores it."""
    enrich.set_provider_factory(lambda: StubProvider(action="triage", action_conf=0.99))
    auto_moves = policy(lambda d: d["decisions"].update(
        advance_stage={"mode": "auto", "owner": "agent", "threshold": 0.5}))
    monkeypatch.setattr(enrich, "active_policy", lambda session=None: auto_moves)
    ordinary, batch, planned = _both_writers(monkeypatch)
    moved = [r for r in batch if r["case"]["stage"] != "intake" and r["case"]["case_type"] == "complaint"]
    assert moved, "the stub's next step should have moved some complaint"
    assert planned < len(batch)
    for one, many in zip(ordinary, batch, strict=True):
        assert many == one


def test_a_case_changed_after_it_was_read_is_applied_on_its_new_state(monkeypatch: pytest.MonkeyPatch) -> None:
    from casemgr.cases import service as cases
    from casemgr.cases.schemas import CasePatch

    ids = _queue("stale")
    target = ids[0]
    real = enrich.call_models

    def edit_meanwhile(inp: Any, provider: Any, classified: Any = None) -> Any:
        if inp.case_id == target:  # an agent edits the case while its models run
            with write_session() as s:
                case = s.get(Case, target)
                assert case is not None
                cases.update_case(s, target, CasePatch(subject="Edited by an agent", version=case.version), "user:agent")
        return real(inp, provider, classified)

    monkeypatch.setattr(enrich, "call_models", edit_meanwhile)
    _drain()
    with read_session() as s:
        case = s.get(Case, target)
        assert case is not None and case.subject == "Edited by an agent" and case.ai_status == "ok"
        actions = [e.action for e in s.execute(select(AuditEvent).where(AuditEvent.case_id == target)
                                               .order_by(AuditEvent.seq)).scalars()]
        assert actions.index("case.updated") < actions.index("ai.status")
        assert audit.verify(s).ok
        assert {c.ai_status for c in s.execute(select(Case).where(Case.id.in_(ids))).scalars()} == {"ok"}


def _use_policy(monkeypatch: pytest.MonkeyPatch, active: Any) -> None:
    """`active` everywhere a writer or the rules' gate reads the policy."""
    from casemgr.governance import policy as policy_module
    from casemgr.governance import service

    for module in (policy_module, enrich, service):
        monkeypatch.setattr(module, "active_policy", lambda session=None: active)


def _held(records: list[dict[str, Any]]) -> list[list[Any]]:
    return [(r["case"]["rules_result"] or {}).get("bound_by_policy") or [] for r in records]


def test_a_rule_consequence_the_policy_holds_back_is_stored_by_the_batch_writer(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Urgency high at 0.68 passes classify (0.6) but not set_priority (0.8): the rule complaint-high-urgency is
    held back (issue 17). The batch writer stores that run itself, with the one pending suggestion the ordinary
    writer leaves (the AI's own set_priority proposal, not a second one from the rule)."""
    enrich.set_provider_factory(lambda: StubProvider(urgency="high", urgency_conf=0.68))
    ordinary, batch, planned = _both_writers(monkeypatch)
    assert planned == len(batch)
    assert any(_held(batch)), "some complaint should have had its rule consequence held back"
    for one, many in zip(ordinary, batch, strict=True):
        assert many == one, _debug_diff(one, many)
    for r, held in zip(batch, _held(batch), strict=True):
        if held:
            pending = [d for d in r["decisions"] if d["kind"] == "set_priority" and d["review_status"] == "pending"]
            assert [d["proposed"] for d in pending] == [{"priority": "high"}]
            assert r["case"]["priority"] == "normal"


def test_a_held_consequence_is_filed_by_the_batch_writer_when_no_proposal_waits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """With set_priority `never` for the AI, its own proposal is rejected, so the rule's held-back consequence is
    filed as a decision of its own (provider "rules"), exactly as the ordinary writer files it."""
    enrich.set_provider_factory(lambda: StubProvider(urgency="high", urgency_conf=0.68))
    _use_policy(monkeypatch, policy(lambda d: d["decisions"].update(set_priority={"mode": "never", "owner": "lead"})))
    ordinary, batch, planned = _both_writers(monkeypatch)
    assert planned == len(batch)
    filed = [d for r in batch for d in r["decisions"] if d["provider"] == "rules"]
    assert filed and all(d["kind"] == "set_priority" and d["outcome"] == "rejected" for d in filed)
    assert len(filed) == sum(1 for held in _held(batch) if held)
    for one, many in zip(ordinary, batch, strict=True):
        assert many == one, _debug_diff(one, many)


def test_a_held_consequence_is_not_filed_again_while_an_earlier_proposal_waits(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A re-run (force) whose rule consequence is held back finds the same proposal pending from the first run:
    neither writer files it again. The batch writer checks that at write time, for the whole batch at once."""
    from casemgr.jobs.service import enqueue

    enrich.set_provider_factory(lambda: StubProvider(urgency="high", urgency_conf=0.68))
    ids = _queue("first")
    _drain()  # default policy: the AI's own set_priority proposal waits for the lead
    _use_policy(monkeypatch, policy(lambda d: d["decisions"].update(set_priority={"mode": "never", "owner": "lead"})))
    planned = _spy_on_plan(monkeypatch, enrich_plan.plan)
    with write_session() as s:
        for cid in ids:
            enqueue(s, enrich.JOB_KIND, {"case_id": cid, "attempt": 0, "force": True},
                    idempotency_key=f"{enrich.JOB_KIND}:{cid}:force")
    _drain()
    records = [_record(i) for i in ids]
    assert any(_held(records)) and set(planned) == set(ids)
    for r in records:
        prio = [d for d in r["decisions"] if d["kind"] == "set_priority"]
        assert not [d for d in prio if d["provider"] == "rules"]  # the waiting proposal was not filed twice
        if (r["case"]["rules_result"] or {}).get("bound_by_policy"):
            assert [d["proposed"] for d in prio if d["review_status"] == "pending"] == [{"priority": "high"}]
    with read_session() as s:
        assert audit.verify(s).ok


def _debug_diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [x for k in sorted(set(a) | set(b), key=str) for x in _debug_diff(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [x for i, (p, q) in enumerate(zip(a, b, strict=True)) for x in _debug_diff(p, q, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]
