"""Fixtures for web UI tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from ._helpers import login


@pytest.fixture
def web_client(app, make_user) -> Callable[..., tuple[TestClient, str]]:  # type: ignore[no-untyped-def]
    """web_client(*roles) -> (a TestClient logged in as a new user with those roles, its CSRF token)."""
    clients: list[TestClient] = []

    def _make(*roles: str) -> tuple[TestClient, str]:
        name, pw = make_user(*roles)
        c = TestClient(app)
        c.__enter__()
        clients.append(c)
        return c, login(c, name, pw)

    yield _make
    for c in clients:
        c.__exit__(None, None, None)

