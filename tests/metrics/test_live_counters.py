"""Live figures from counters (issue 23): after any sequence of changes, by any write path, and refreshes (folds in
chunks, in one transaction, concurrent, none, a full recount in between), live.live_figures() equals the full
recompute service.compute_live(); a refresh after no changes reads no closed case and no other table's rows."""

from __future__ import annotations

import random
import threading
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from casemgr.ai.models import AICall
from casemgr.audit import service as audit
from casemgr.audit.service import canonical
from casemgr.cases import service as cases
from casemgr.cases.enums import CaseStatus
from casemgr.cases.models import Case
from casemgr.cases.schemas import CaseCreate
from casemgr.clock import now
from casemgr.db import read_session, write_session
from casemgr.errors import DomainError
from casemgr.governance.models import AIDecision
from casemgr.intake.models import Message, QuarantinedMessage
from casemgr.metrics import live, service

LISTS = {"backlog": ("case_type", "stage", "queue"), "open_ages": ("case_type", "stage"), "sla": ("case_type",),
         "ai_calls": ("capability", "provider")}


def _normal(data: dict[str, Any]) -> dict[str, Any]:
    out = canonical(data)
    for name, keys in LISTS.items():  # PostgreSQL groups in hash order
        out[name] = sorted(out[name], key=lambda r, keys=keys: tuple(r[k] for k in keys))
    return out


def _assert_live_equals_full_recompute() -> None:
    at = now()
    with read_session() as s:
        got, want = _normal(live.live_figures(s, at)), _normal(service.compute_live(s, at))
    for g, w in zip(got["ai_calls"], want["ai_calls"], strict=True):  # float sums, added in another order
        assert g.pop("latency_ms_sum") == pytest.approx(w.pop("latency_ms_sum"), rel=1e-9, abs=1e-6)
    assert got == want


def _make_cases(rng: random.Random, n: int) -> list[int]:
    ids = []
    with write_session() as s:
        for i in range(n):
            created = now() - timedelta(days=rng.uniform(0, 20))
            case = cases.create_case(s, CaseCreate(case_type=rng.choice(("complaint", "contract")),
                                                   subject=f"live case {i}"), "user:test", created_at=created)
            ids.append(int(case.id or 0))
    return ids


def _change(rng: random.Random, ids: list[int]) -> None:
    """One random change of something a live figure counts, through the service or straight in SQL."""
    what = rng.choice(("new case", "move", "ai status", "fallback", "decision", "review", "call", "breach",
                       "quarantine", "release", "outbound", "delivery", "retype", "delete call"))
    if what == "new case":
        ids.extend(_make_cases(rng, 1))
        return
    with write_session() as s:
        case = s.get(Case, rng.choice(ids))
        assert case is not None
        if what == "move":
            options = cases.allowed_transitions(case)
            if options:
                try:
                    cases.transition(s, case.id or 0, rng.choice(options), case.version, "user:test")
                except DomainError:
                    pass
        elif what == "ai status":
            case.ai_status = rng.choice(("pending", "done", "unavailable"))
            s.add(case)
        elif what == "fallback":
            case.rules_result = rng.choice(({"default_used": True}, {"default_used": False}, {}, None))
            s.add(case)
        elif what == "decision":
            s.add(AIDecision(case_id=case.id or 0, kind=rng.choice(("classify", "set_priority")),
                             outcome=rng.choice(("applied", "suggested", "rejected")), policy_version="t",
                             proposed={"v": 1}))
        elif what == "review":
            s.execute(text("UPDATE ai_decisions SET review_status = :r WHERE id = (SELECT min(id) FROM ai_decisions "
                           "WHERE review_status <> :r)"),
                      {"r": rng.choice(("none", "accepted", "overridden", "rejected"))})
        elif what == "call":
            s.add(AICall(case_id=case.id, capability=rng.choice(("classify", "summarize")), provider="local",
                         input_hash="h", latency_ms=rng.choice((3.5, 10.0, 42.25, 700.0, 20000.0)),
                         error=rng.choice((None, "timeout"))))
        elif what == "delete call":
            s.execute(text("DELETE FROM ai_calls WHERE id = (SELECT max(id) FROM ai_calls)"))
        elif what == "breach":
            audit.record(s, actor="system:sla", action=rng.choice(("sla.breached", "sla.at_risk")), case_id=case.id)
        elif what == "quarantine":
            s.add(QuarantinedMessage(channel="email", reason="bad", created_at=now() - timedelta(days=rng.choice((1, 9)))))
        elif what == "release":
            s.execute(text("UPDATE quarantine SET status = 'reprocessed' WHERE id = (SELECT min(id) FROM quarantine "
                           "WHERE status = 'held')"))
        elif what == "outbound":
            s.add(Message(case_id=case.id, direction=rng.choice(("outbound", "inbound")), channel="email",
                          status=rng.choice(("queued", "failed", "outbox", "sent"))))
        elif what == "delivery":
            s.execute(text("UPDATE messages SET status = :st WHERE id = (SELECT max(id) FROM messages)"),
                      {"st": rng.choice(("sent", "failed", "outbox"))})
        elif what == "retype":  # a key of a counted row changes (no service does this today; SQL may)
            s.execute(text("UPDATE cases SET case_type = :t WHERE id = :i"),
                      {"t": rng.choice(("complaint", "contract")), "i": case.id})
            s.execute(text("UPDATE stage_history SET case_type = :t WHERE case_id = :i"),
                      {"t": rng.choice(("complaint", "contract")), "i": case.id})


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_live_figures_from_counters_equal_a_full_recompute_after_random_changes(seed: int, monkeypatch) -> None:
    rng = random.Random(seed)
    monkeypatch.setattr(live, "FIRST_CHUNK", 2)  # many small fold chunks
    monkeypatch.setattr(live, "MAX_CHUNK", 3)
    ids = _make_cases(rng, 8)
    service.refresh_in_steps()  # the first refresh counts the tables (the counters start uninitialised)
    for step in range(90):
        _change(rng, ids)
        if rng.random() < 0.25:
            how = rng.choice(("steps", "fold", "in session", "recount", "recount in session", "none"))
            if how == "steps":
                service.refresh_in_steps()
            elif how == "fold":
                live.fold()
            elif how == "in session":
                with write_session() as s:
                    service.refresh(s)
            elif how == "recount":
                live.reset()
            elif how == "recount in session":
                with write_session() as s:
                    live.reset_in_session(s)
        if step % 15 == 0:
            _assert_live_equals_full_recompute()  # exact with deltas not yet folded too
    ids.extend(_make_cases(rng, 1))
    with read_session() as s:
        rows = s.execute(text("SELECT count(*) FROM metric_deltas")).scalar_one()
    assert rows > 0  # the last changes are still deltas: the reader adds them
    _assert_live_equals_full_recompute()
    live.fold()
    with read_session() as s:
        assert s.execute(text("SELECT count(*) FROM metric_deltas")).scalar_one() == 0
        _assert_close_rows(live.current_rows(s), live.full_counter_rows(s))
    _assert_live_equals_full_recompute()


def _assert_close_rows(got: list[live.Row], want: list[live.Row]) -> None:
    g = {r[:4]: r[4:] for r in got}
    w = {r[:4]: r[4:] for r in want}
    assert set(g) == set(w)
    for k, (n, a, b, v) in w.items():
        assert g[k][:3] == (n, a, b), k
        assert g[k][3] == pytest.approx(v, rel=1e-9, abs=1e-6), k


def test_the_snapshot_and_the_full_command_repair_broken_counters() -> None:
    rng = random.Random(4)
    ids = _make_cases(rng, 5)
    for _ in range(20):
        _change(rng, ids)
    live_now = service.refresh_in_steps()
    assert live_now["totals"]["cases"] == len(ids)
    with write_session() as s:
        s.execute(text("UPDATE metric_counters SET n = n + 7 WHERE metric = 'cases' AND k1 = "
                       "(SELECT min(k1) FROM metric_counters WHERE metric = 'cases')"))  # damage (a restore, a manual edit)
    with read_session() as s:
        assert live.live_figures(s, now())["totals"]["cases"] == len(ids) + 7
    service.refresh_in_steps(full=True)  # `casemgr metrics refresh --full`
    _assert_live_equals_full_recompute()
    with read_session() as s:
        assert s.get(service.MetricSnapshot, service.LIVE).data["totals"]["cases"] == len(ids)


def test_concurrent_folds_and_writers_count_each_change_once(monkeypatch) -> None:
    rng = random.Random(12)
    monkeypatch.setattr(live, "FIRST_CHUNK", 2)
    monkeypatch.setattr(live, "MAX_CHUNK", 3)
    ids = _make_cases(rng, 6)
    service.refresh_in_steps()
    errors: list[BaseException] = []

    def run(fn: Any) -> None:
        try:
            fn()
        except BaseException as exc:  # an assertion or error inside a thread must fail the test
            errors.append(exc)

    def writer() -> None:
        wrng = random.Random(99)
        for _ in range(25):
            _change(wrng, ids)

    def folder() -> None:
        for _ in range(6):
            live.fold()

    threads = [threading.Thread(target=run, args=(f,)) for f in (writer, folder, folder, live.reset)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors
    _assert_live_equals_full_recompute()
    live.fold()
    _assert_live_equals_full_recompute()


def _vm_steps(fn: Any) -> int:
    """SQLite virtual-machine instructions run by fn(session) in one read session: the work, independent of time."""
    steps = [0]

    def tick() -> int:
        steps[0] += 1
        return 0

    with read_session() as s:
        raw = s.connection().connection.driver_connection
        raw.set_progress_handler(tick, 1)
        try:
            fn(s)
        finally:
            raw.set_progress_handler(None, 1)
    return steps[0]


def _add_closed_history(n: int) -> None:
    """n closed cases with their visits, AI calls and decisions, in the groups that already exist."""
    ids = _make_cases(random.Random(n), n)
    with write_session() as s:
        for i in ids:
            s.add(AICall(case_id=i, capability="classify", provider="local", input_hash="h", latency_ms=42.0))
            s.add(AIDecision(case_id=i, kind="classify", outcome="applied", policy_version="t", proposed={}))
        s.execute(text(f"UPDATE cases SET status = 'closed' WHERE id IN ({','.join(map(str, ids))})"))


@pytest.mark.sqlite_only
def test_a_refresh_after_no_changes_reads_no_closed_case_and_no_history() -> None:
    _make_cases(random.Random(1), 6)  # the open backlog, the same throughout
    _add_closed_history(5)
    service.refresh_in_steps()
    at = now()
    small = _vm_steps(lambda s: live.live_figures(s, at))
    small_full = _vm_steps(lambda s: service.compute_live(s, at))
    _add_closed_history(80)
    service.refresh_in_steps()
    with read_session() as s:
        assert s.execute(text("SELECT count(*) FROM metric_deltas")).scalar_one() == 0
    assert live.fold() == {"deltas": 0, "transactions": 0}  # nothing changed: no write, nothing read but one row
    # The same work with 16x the closed cases, visits, calls and decisions: it follows the open cases alone.
    assert _vm_steps(lambda s: live.live_figures(s, at)) == small
    assert _vm_steps(lambda s: service.compute_live(s, at)) > small_full + 1000  # the full recompute grows


@pytest.mark.sqlite_only
def test_every_read_of_cases_goes_through_the_open_partial_indexes() -> None:
    from sqlalchemy import event

    _make_cases(random.Random(2), 3)
    service.refresh_in_steps()
    seen: list[tuple[str, Any]] = []

    def grab(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            seen.append((statement, params))

    with read_session() as s:
        engine = s.get_bind()
        event.listen(engine, "before_cursor_execute", grab)
        try:
            live.live_figures(s, now())
        finally:
            event.remove(engine, "before_cursor_execute", grab)
        plans = [" | ".join(str(r[-1]) for r in s.connection().exec_driver_sql(
            "EXPLAIN QUERY PLAN " + statement, tuple(params or ())).all()) for statement, params in seen]
    reads = [p for p in plans if " cases" in p]
    assert len(reads) == 4, plans
    assert CaseStatus.OPEN.value == live.OPEN  # backlog, ages, SLA state, longest waiting
    for p in reads:
        assert "ix_cases_open_backlog" in p or "ix_cases_open_entered" in p, p
    for p in plans:
        for table in ("stage_history", "ai_calls", "ai_decisions", "audit_events", "messages"):
            assert f" {table}" not in p, p

