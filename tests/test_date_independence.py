"""The time-dependent rooms pass on any date: their tests run again with the system clock 400 days ahead.

Tests must never depend on the wall-clock date (they pin time with casemgr.clock and time-machine). A test
that queues a row at the real date and then travels to a fixed date, or compares a fixed date with "now",
passes until the calendar reaches that date and then fails. Debian's `faketime` (libfaketime, LD_PRELOAD)
moves the clock of the whole child process, so such a test fails here today rather than in CI next year.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ROOMS = ["tests/sla", "tests/jobs", "tests/metrics"]


@pytest.mark.slow
@pytest.mark.sqlite_only
@pytest.mark.timeout(1500)
def test_sla_jobs_and_metrics_pass_with_the_clock_400_days_ahead() -> None:
    faketime = shutil.which("faketime")
    assert faketime, "Debian package faketime is missing (scripts/test.sh installs it)"
    env = {k: v for k, v in os.environ.items() if k not in ("CASEMGR_TEST_DATABASE_URL", "PYTEST_ADDOPTS")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    # The child must really see the moved clock, or this test proves nothing.
    probe = subprocess.run([faketime, "-f", "+400d", sys.executable, "-c", "import time; print(time.time())"],
                           capture_output=True, text=True, timeout=60, env=env)
    assert float(probe.stdout) - time.time() > 399 * 86400, probe.stdout + probe.stderr
    run = subprocess.run(
        [faketime, "-f", "+400d", sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-m", "not slow", *ROOMS],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1400)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-3000:]
    assert " passed" in run.stdout
