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
    probe = ("import gc, json; import casemgr.web.asgi as a; "
             "print(json.dumps([gc.get_threshold()[0], gc.get_freeze_count(), a.YOUNG_GC_THRESHOLD]))")
    env = {**os.environ, "CASEMGR_DATA_DIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True, timeout=120,
                         check=True).stdout
    threshold, frozen, wanted = json.loads(out.strip().splitlines()[-1])
    assert threshold == wanted >= 5_000
    assert frozen > 50_000  # the application's modules, routes and models
