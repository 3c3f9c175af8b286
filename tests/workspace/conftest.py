"""Fixtures for the workspace room: API clients acting as named users with roles."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient

from tests.web.conftest import web_client  # noqa: F401 - logged-in browser-like clients


@dataclass
class Person:
    username: str
    user_id: int
    client: TestClient


@pytest.fixture
def person(app) -> Iterator[Callable[..., Person]]:  # type: ignore[no-untyped-def]
    """person(username, *roles) -> a user with an API key and a TestClient sending it."""
    from casemgr.db import write_session
    from casemgr.users import service

    clients: list[TestClient] = []

    def _make(username: str, *roles: str) -> Person:
        with write_session() as s:
            user = service.create_user(s, username, "correct-horse-battery", list(roles))
            _, secret = service.create_api_key(s, f"key-{username}", user.id)
            uid = int(user.id or 0)
        c = TestClient(app, headers={"X-API-Key": secret})
        c.__enter__()
        clients.append(c)
        return Person(username, uid, c)

    yield _make
    for c in clients:
        c.__exit__(None, None, None)


def make_cases(n: int, *, subject: str = "Card charged twice", email: str = "pat@example.com",
               case_type: str = "complaint") -> list[int]:
    from casemgr.cases import service
    from casemgr.cases.schemas import CaseCreate, PartyIn
    from casemgr.db import write_session

    ids = []
    with write_session() as s:
        for i in range(n):
            c = service.create_case(s, CaseCreate(case_type=case_type, subject=f"{subject} {i}",
                                                  description="I was charged twice for one order.",
                                                  party=PartyIn(name="Pat Doe", email=email),
                                                  fields={"counterparty": "ACME"} if case_type == "contract" else {}),
                                    actor="user:test")
            ids.append(int(c.id or 0))
    return ids


def versions(ids: list[int]) -> list[dict[str, int]]:
    from casemgr.cases.models import Case
    from casemgr.db import read_session

    with read_session() as s:
        return [{"id": i, "version": s.get(Case, i).version} for i in ids]  # type: ignore[union-attr]
