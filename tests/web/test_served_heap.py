"""The served app's garbage-collector settings (casemgr.web.asgi, issue 23)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_a_served_app_freezes_its_start_up_heap_and_collects_young_objects_less_often(tmp_path: Path) -> None:
    """Python's default (a young collection every 700 allocations) promoted the objects of every request waiting
    for its group commit and set off a full collection about once a second under load."""
    probe = ("import gc, json; import casemgr.web.asgi; from casemgr.gcpolicy import YOUNG_THRESHOLD; "
             "print(json.dumps([gc.get_threshold()[0], gc.get_freeze_count(), YOUNG_THRESHOLD]))")
    env = {**os.environ, "CASEMGR_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120,
                         check=True).stdout
    threshold, frozen, wanted = json.loads(out.strip().splitlines()[-1])
    assert threshold == wanted >= 5_000
    assert frozen > 50_000  # the application's modules, routes and models


def test_a_worker_process_of_its_own_collects_young_objects_less_often(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """`casemgr worker` (settle_heap: the process is the worker's own) takes the same schedule; a worker run inside
    another process (tests, an embedded worker thread) leaves that process's collector alone."""
    import gc
    import signal

    from casemgr.gcpolicy import YOUNG_THRESHOLD
    from casemgr.worker import Worker, run_worker

    monkeypatch.setattr(Worker, "run", lambda self, once=False: {})  # the set-up is under test, not the jobs
    # run_worker installs its own SIGTERM/SIGINT handlers; the test process gets its own back afterwards.
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    saved = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        run_worker(once=True, schedule=False)
        assert gc.get_threshold() == (700, 10, 10)
        run_worker(once=True, schedule=False, settle_heap=True)
        assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)
    finally:
        gc.set_threshold(*saved)
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
