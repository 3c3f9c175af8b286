"""50 parallel updates of one case: exactly one success per version, the rest 409, nothing lost or doubled."""

from __future__ import annotations

import threading
from collections import Counter

from sqlalchemy import select

from casemgr.audit.models import AuditEvent
from casemgr.db import read_session


def test_fifty_parallel_updates_one_success_per_version(agent_client) -> None:
    case = agent_client.post("/api/cases", json={"case_type": "complaint", "subject": "hot case"}).json()
    cid, v0 = case["id"], case["version"]
    results: list[tuple[int, int]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(50)

    def worker(i: int) -> None:
        barrier.wait()
        r = agent_client.patch(f"/api/cases/{cid}", json={"version": v0, "subject": f"edit {i}"})
        with lock:
            results.append((i, r.status_code))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(50)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = Counter(code for _, code in results)
    assert codes == Counter({200: 1, 409: 49}), codes

    # Second round: each thread retries from what it reads; every version is won by exactly one writer.
    wins: list[int] = []

    def retrier(i: int) -> None:
        for _ in range(200):
            cur = agent_client.get(f"/api/cases/{cid}").json()
            r = agent_client.patch(f"/api/cases/{cid}", json={"version": cur["version"], "subject": f"retry {i}"})
            if r.status_code == 200:
                with lock:
                    wins.append(cur["version"])
                return
            assert r.status_code == 409, r.text

    threads = [threading.Thread(target=retrier, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 20 and len(set(wins)) == 20, "two writers won the same version"
    final = agent_client.get(f"/api/cases/{cid}").json()
    with read_session() as s:
        updates = s.execute(
            select(AuditEvent).where(AuditEvent.case_id == cid, AuditEvent.action == "case.updated")
            .order_by(AuditEvent.seq)
        ).scalars().all()
    assert len(updates) == 21
    assert final["subject"] == updates[-1].after["subject"]
