"""Shared fixtures: a fresh, migrated database per test (SQLite by default, PostgreSQL when
CASEMGR_TEST_DATABASE_URL is set), settings pointed at a temp data dir, users and API clients per role."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from casemgr import migrate
from casemgr.casetypes.registry import reset_registry
from casemgr.config import reset_settings

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
PG_URL = os.environ.get("CASEMGR_TEST_DATABASE_URL")


def _sa_url(url: str) -> str:
    return "postgresql+psycopg://" + url.split("://", 1)[1] if url.startswith("postgres") else url


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> Path | None:
    """Migrate once per session; tests copy (SQLite) or truncate (PostgreSQL) from here."""
    d = tmp_path_factory.mktemp("template")
    os.environ["CASEMGR_DATA_DIR"] = str(d)
    if PG_URL:
        os.environ["CASEMGR_DATABASE_URL"] = PG_URL
        eng = create_engine(_sa_url(PG_URL))
        with eng.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        eng.dispose()
    else:
        os.environ.pop("CASEMGR_DATABASE_URL", None)
    reset_settings()
    migrate.upgrade()
    reset_settings()
    return None if PG_URL else d / "casemgr.sqlite3"


def truncate_all_pg(url: str) -> None:
    from casemgr.models_registry import metadata

    eng = create_engine(_sa_url(url))
    names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
    with eng.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        # As migration 0006 leaves a fresh database: the audit chain's genesis head row exists.
        conn.execute(text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :h)"), {"h": "0" * 64})
    eng.dispose()


@pytest.fixture(autouse=True)
def fresh_db(tmp_path: Path, _template_db: Path | None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monkeypatch.setenv("CASEMGR_DATA_DIR", str(data_dir))
    monkeypatch.setenv("CASEMGR_SECRET_KEY", "test-secret-key-not-for-production")
    if PG_URL:
        monkeypatch.setenv("CASEMGR_DATABASE_URL", PG_URL)
        truncate_all_pg(PG_URL)
    else:
        monkeypatch.delenv("CASEMGR_DATABASE_URL", raising=False)
        assert _template_db is not None
        shutil.copy(_template_db, data_dir / "casemgr.sqlite3")
    reset_settings()
    reset_registry()
    yield data_dir
    reset_settings()
    reset_registry()


@pytest.fixture
def make_user() -> Callable[..., tuple[str, str]]:
    """Create a user with roles; returns (username, password)."""
    from casemgr.db import write_session
    from casemgr.users import service

    counter = {"n": 0}

    def _make(*roles: str, username: str | None = None, password: str = "correct-horse-battery") -> tuple[str, str]:
        counter["n"] += 1
        name = username or f"{'-'.join(roles) or 'nobody'}{counter['n']}"
        with write_session() as s:
            service.create_user(s, name, password, list(roles))
        return name, password

    return _make


@pytest.fixture
def api_key() -> Callable[..., str]:
    """An API key acting as a new user with the given roles."""
    from casemgr.db import write_session
    from casemgr.users import service

    counter = {"n": 0}

    def _key(*roles: str, scopes: list[str] | None = None) -> str:
        counter["n"] += 1
        with write_session() as s:
            user = service.create_user(s, f"key-{'-'.join(roles)}-{counter['n']}", "correct-horse-battery", list(roles))
            _, secret = service.create_api_key(s, f"test-{counter['n']}", user.id, scopes)
        return secret

    return _key


@pytest.fixture
def app():  # type: ignore[no-untyped-def]
    from casemgr.web.app import create_app

    return create_app()


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    with TestClient(app) as c:
        yield c


@pytest.fixture
def agent_client(app, api_key):  # type: ignore[no-untyped-def]
    """A TestClient authenticated by an API key of an agent."""
    from fastapi.testclient import TestClient

    key = api_key("agent")
    with TestClient(app, headers={"X-API-Key": key}) as c:
        yield c
