"""Fixtures for security tests: small size limits, the real intake SMTP server, a loopback relay sink, clients."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from casemgr.runtime import rebuild

LIMIT = 300_000  # bytes per message in these tests: small, so oversized inputs are cheap to build


@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setenv("CASEMGR_MAX_MESSAGE_BYTES", str(LIMIT))
    monkeypatch.setenv("CASEMGR_FORM_RATE_PER_MINUTE", "1000")
    rebuild()
    return LIMIT


@pytest.fixture
def smtp_server(limits: int, intake_smtp: tuple[str, int]) -> tuple[str, int]:
    """tests/conftest.py's intake SMTP server, with these tests' small limits."""
    return intake_smtp


@pytest.fixture
def api(app: Any, api_key: Any, limits: int) -> Iterator[TestClient]:
    with TestClient(app, headers={"X-API-Key": api_key("agent", "lead")}, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def anon(app: Any, limits: int) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c
