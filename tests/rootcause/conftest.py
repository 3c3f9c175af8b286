"""Fixtures of the root-cause room: browser-like clients and API clients acting as named users."""

from __future__ import annotations

from tests.web.conftest import web_client  # noqa: F401 - logged-in browser-like clients
from tests.workspace.conftest import person  # noqa: F401 - person(username, *roles) with an API client
