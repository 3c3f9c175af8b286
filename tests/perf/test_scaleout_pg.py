"""Scale-out on PostgreSQL: two app processes and two workers on one database lose and duplicate nothing.

Intake requests are spread over both apps (some external ids sent twice, to different apps); AI enrichment
is queued by the apps and run by the workers, acknowledgement mail goes to a real SMTP sink on loopback.
Every 2xx request is stored exactly once and every job ran exactly once (counted by its side effects).
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from casemgr.bench import serving

PG_URL = os.environ.get("CASEMGR_TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(not PG_URL, reason="needs CASEMGR_TEST_DATABASE_URL (make test runs it on PG)")

N_UNIQUE = 60  # API submissions; every fifth one is sent a second time, to the other app
N_FORM = 12  # form-channel submissions: each queues one acknowledgement mail


def _wait_for_jobs(deadline: float) -> dict[str, int]:
    from casemgr.db import read_session
    from casemgr.jobs.models import Job

    while True:
        with read_session() as s:
            rows = s.execute(select(Job.status, func.count()).where(Job.kind.in_(("ai.enrich", "mail.send")))
                             .group_by(Job.status)).all()
        counts = {status: n for status, n in rows}
        if not any(counts.get(k) for k in ("queued", "running", "failed")) or time.monotonic() > deadline:
            return counts
        time.sleep(0.2)


def test_two_apps_two_workers_on_one_postgresql(monkeypatch: pytest.MonkeyPatch, smtp_sink: Any) -> None:
    from casemgr.ai.models import AICall
    from casemgr.audit import service as audit
    from casemgr.cases.models import Case
    from casemgr.db import read_session, write_session
    from casemgr.intake.models import Message
    from casemgr.intake.service import Submission, ingest_submission
    from casemgr.jobs.models import Job
    from casemgr.users import service as users

    monkeypatch.setenv("CASEMGR_AI_INLINE", "false")  # the apps (and this process) queue AI for the workers
    from casemgr.runtime import rebuild

    rebuild()
    with write_session() as s:
        _, key = users.create_api_key(s, "scaleout", None, ["intake"], actor="test")
    env = smtp_sink.env
    ports = [serving.free_port(), serving.free_port()]
    with ExitStack() as stack:
        for port in ports:
            stack.enter_context(serving.process(serving.serve_args(port, 1), env, port=port))
        ids = [f"ext-{i}-{uuid.uuid4().hex[:8]}" for i in range(N_UNIQUE)]
        plan = [(i % 2, ext) for i, ext in enumerate(ids)] + [((i + 1) % 2, ext) for i, ext in
                                                              enumerate(ids) if i % 5 == 0]
        clients = [httpx.Client(base_url=f"http://127.0.0.1:{p}", headers={"X-API-Key": key}, timeout=30)
                   for p in ports]

        def submit(item: tuple[int, str]) -> tuple[str, int, dict[str, Any]]:
            app, ext = item
            r = clients[app].post("/api/intake", json={
                "subject": f"Scale-out {ext}", "body": "My card was charged twice and no refund came.",
                "sender": {"name": "Scale Out", "email": "scale@example.org"}, "external_id": ext})
            return ext, r.status_code, r.json()

        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(submit, plan))
        for c in clients:
            c.close()
        for i in range(N_FORM):  # acknowledgement mail jobs, created on the same database
            ingest_submission(Submission(channel="form", case_type="complaint", subject=f"Form {i}",
                                         body="The bank closed my account.", name="Form User",
                                         email=f"form{i}@example.org"), actor="public:form")
        for _ in range(2):
            stack.enter_context(serving.process(serving.worker_args("--concurrency", "2"), env))
        counts = _wait_for_jobs(time.monotonic() + 40)

    # Every 2xx request stored exactly once: one case per external id, repeats answered as duplicates.
    assert all(200 <= code < 300 for _, code, _ in results), [r for r in results if not 200 <= r[1] < 300][:3]
    case_of: dict[str, set[int]] = {}
    for ext, _, body in results:
        case_of.setdefault(ext, set()).add(body["case_id"])
    assert all(len(v) == 1 for v in case_of.values()), "a repeated external id opened a second case"
    assert Counter(body["status"] for _, _, body in results) == {"case": N_UNIQUE, "duplicate": N_UNIQUE // 5}
    with read_session() as s:
        assert s.execute(select(func.count()).select_from(Case)).scalar_one() == N_UNIQUE + N_FORM
        assert s.execute(select(func.count()).select_from(Message)
                         .where(Message.channel == "api")).scalar_one() == N_UNIQUE
        jobs = s.execute(select(Job.kind, Job.status, Job.attempts, Job.locked_by)
                         .where(Job.kind.in_(("ai.enrich", "mail.send")))).all()
        classify_calls = Counter(s.execute(select(AICall.case_id).where(AICall.capability == "classify")).scalars())
        assert audit.verify(s).ok

    # Every job ran exactly once: all done at the first attempt, and each side effect happened once.
    assert counts.get("done") == len(jobs), counts
    assert Counter(k for k, *_ in jobs) == {"ai.enrich": N_UNIQUE + N_FORM, "mail.send": N_FORM}
    assert all(attempts == 1 for _, _, attempts, _ in jobs)
    assert len(classify_calls) == N_UNIQUE + N_FORM and set(classify_calls.values()) == {1}
    assert len(smtp_sink.messages) == N_FORM
    # Both workers took part (locked_by is "host:pid:tag/slot").
    assert len({locked_by.rsplit("/", 1)[0] for *_, locked_by in jobs}) == 2
