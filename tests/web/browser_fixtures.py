"""Session-wide parts of the browser journeys (tests/web/test_browser.py, tests/workspace/test_browser_journeys.py),
registered from tests/conftest.py so both modules share one instance: the demo data set, migrated and seeded once
by `casemgr db upgrade` and `casemgr demo` as a user would (about 20 s of CPU each time), and one Debian Chromium.
Each module still serves its own copy of the data, and each test opens its own browser context (cookies, storage),
so no module or test sees what another one changed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SECRET_KEY = "browser-test-secret"


def served_env(data: Path) -> dict[str, str]:
    """The environment of the served app and of the commands run against its data dir."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEMGR_")}
    env.update({"CASEMGR_DATA_DIR": str(data), "CASEMGR_SECRET_KEY": SECRET_KEY, "CASEMGR_AI_INLINE": "false",
                "PYTHONUNBUFFERED": "1"})
    return env


@pytest.fixture(scope="session")
def demo_data_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """(a data dir after `casemgr db upgrade` and `casemgr demo`, the demo users' passwords): copy it, never serve
    it."""
    data = tmp_path_factory.mktemp("demo-template")
    env = served_env(data)
    casemgr = [sys.executable, "-m", "casemgr.cli"]
    subprocess.run([*casemgr, "db", "upgrade"], env=env, check=True, capture_output=True, timeout=120)
    demo = subprocess.run([*casemgr, "demo"], env=env, check=True, capture_output=True, text=True, timeout=300)
    passwords = dict(re.findall(r"user (\S+)\s+password (\S+)", demo.stdout))
    assert {"agent", "governance", "governance2", "reviewer"} <= set(passwords), demo.stdout
    return data, passwords


@pytest.fixture(scope="session")
def chromium_browser() -> Iterator[Any]:
    """Debian's Chromium, launched once per session (Playwright, never a downloaded browser)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()
