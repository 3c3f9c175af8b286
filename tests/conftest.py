"""Shared fixtures: a fresh, migrated database per test (SQLite by default, PostgreSQL when
CASEMGR_TEST_DATABASE_URL is set), settings pointed at a temp data dir, users and API clients per role."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.exc import DBAPIError

from casemgr import migrate
from casemgr.bench.serving import free_port  # the one free_port (tests import it from casemgr.bench.serving)
from casemgr.runtime import close_current, rebuild

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
PG_URL = os.environ.get("CASEMGR_TEST_DATABASE_URL")
# scripts/test.sh (so `make test` and .ci/run) sets this: there a missing ../shared/data fails the model-quality
# tests instead of skipping them, so CI cannot go green without having measured them.
REQUIRE_SHARED_DATA = os.environ.get("CASEMGR_REQUIRE_SHARED_DATA") == "1"
# Session-wide browser fixtures (one demo data set, one Chromium) shared by the browser journey modules.
pytest_plugins = ["tests.web.browser_fixtures"]


def _share_route_state_between_apps() -> None:
    """Prepare each included route once per test process, as one served process does.

    Every test builds its own app (create_app), and FastAPI prepares each included route (dependency analysis, one
    pydantic adapter per parameter) again for every app, on its first requests: about 0.25 s of CPU per test that
    makes a request. The prepared state depends only on the route and on its router, which create_app includes the
    same way every time, so apps share it here (dependency_overrides, which nothing uses, would stay the first
    app's). Only routers of casemgr.web.app.ROUTERS are shared; routes made per app are prepared per app. A private
    FastAPI API: if it moves, the AttributeError stops the suite at import instead of slowing it down unseen."""
    from fastapi import routing

    context_cls = routing._EffectiveRouteContext
    build = context_cls.from_api_route.__func__  # type: ignore[attr-defined]
    shared: dict[tuple[int, int, str], tuple[Any, Any, Any]] = {}
    module_routers: set[int] = set()

    def from_api_route(cls: Any, *, original_route: Any, include_context: Any) -> Any:
        if not module_routers:
            from casemgr.web import app as web_app

            for ref in web_app.ROUTERS:
                try:
                    module_routers.add(id(web_app._load(ref)))
                except ImportError:  # tests/config/test_registration.py lists a missing room on purpose
                    pass
        router = include_context.included_router
        if id(router) not in module_routers:
            return build(cls, original_route=original_route, include_context=include_context)
        key = (id(original_route), id(router), include_context.prefix)
        hit = shared.get(key)
        if hit is None or hit[0] is not original_route or hit[1] is not router:
            hit = shared[key] = (original_route, router,
                                 build(cls, original_route=original_route, include_context=include_context))
        return hit[2]

    context_cls.from_api_route = classmethod(from_api_route)  # type: ignore[method-assign, assignment]


_share_route_state_between_apps()


def require_shared_data(relpath: str) -> Path:
    """The path of ../shared/data/<relpath>; skips the test when it is missing, or fails it where required."""
    path = SHARED_DATA / relpath
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        message = f"shared data {path} is missing"
        if REQUIRE_SHARED_DATA:
            pytest.fail(f"{message} (CASEMGR_REQUIRE_SHARED_DATA=1)", pytrace=False)
        pytest.skip(message)
    return path


def pytest_runtest_setup(item: pytest.Item) -> None:
    for mark in item.iter_markers("shared_data"):
        for relpath in mark.args:
            require_shared_data(relpath)


@pytest.fixture
def shared_data() -> Callable[[str], Path]:
    """shared_data("eml") -> the path under ../shared/data (skip, or fail under CASEMGR_REQUIRE_SHARED_DATA=1)."""
    return require_shared_data


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
    rebuild()
    migrate.upgrade()
    close_current()
    return None if PG_URL else d / "casemgr.sqlite3"


_PG_ENGINES: dict[str, Engine] = {}


def _pg_engine(url: str) -> Engine:
    """One small pooled engine per URL for the per-test reset: a new connection per test cost ~40 ms."""
    eng = _PG_ENGINES.get(url)
    if eng is None:
        eng = _PG_ENGINES[url] = create_engine(_sa_url(url), pool_size=1, max_overflow=0, pool_pre_ping=True)
    return eng


@functools.cache
def _pg_reset_sql() -> str:
    """One server-side block: DELETE the rows of the tables that have any (dependents first), restart the sequences
    that were used, put back the audit chain's genesis head row (as migration 0006 leaves a fresh database).
    Same end state as TRUNCATE ... RESTART IDENTITY of every table, at a quarter of the cost: TRUNCATE replaces
    the files of all 27 tables and their indexes, where a test dirties a handful."""
    from casemgr.models_registry import metadata

    names = ", ".join(f"'{t.name}'" for t in reversed(metadata.sorted_tables))
    return f"""DO $$
DECLARE t text; has_rows boolean; s record;
BEGIN
  FOREACH t IN ARRAY ARRAY[{names}] LOOP
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I)', t) INTO has_rows;
    IF has_rows THEN EXECUTE format('DELETE FROM %I', t); END IF;
  END LOOP;
  -- The deletes above fired the live-metric triggers (migration 0024), some after metric_deltas was emptied.
  DELETE FROM metric_deltas;
  FOR s IN SELECT schemaname, sequencename FROM pg_sequences
           WHERE schemaname = current_schema() AND last_value IS NOT NULL LOOP
    EXECUTE format('ALTER SEQUENCE %I.%I RESTART', s.schemaname, s.sequencename);
  END LOOP;
  INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, repeat('0', 64));
END $$"""


def truncate_all_pg(url: str) -> None:
    """Empty every table of the models and restart their sequences: each test starts from a fresh database."""
    from casemgr.models_registry import metadata

    eng = _pg_engine(url)
    try:
        with eng.begin() as conn:
            conn.execute(text(_pg_reset_sql()))
    except DBAPIError:
        # A table outside the models referencing one of them blocks the DELETE: the full TRUNCATE cascades.
        names = ", ".join(f'"{t.name}"' for t in metadata.sorted_tables)
        with eng.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
            conn.execute(text("INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, :h)"), {"h": "0" * 64})


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
    rebuild()  # a fresh application context per test (casemgr.runtime): settings, engines, rules, policy, ...
    yield data_dir
    close_current()


@pytest.fixture(autouse=True)
def _no_db_means_no_db(request: pytest.FixtureRequest, fresh_db: Path) -> Iterator[None]:
    """A test marked `no_db` is left out of the PostgreSQL run (scripts/test.sh), so it must not touch a database:
    any SQL it runs in this process fails it. (Its fresh database is set up before, by fresh_db.)"""
    if not request.node.get_closest_marker("no_db"):
        yield
        return
    from sqlalchemy import event

    statements: list[str] = []

    def seen(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", seen)
    try:
        yield
    finally:
        event.remove(Engine, "before_cursor_execute", seen)
    assert not statements, f"marked no_db, but ran {len(statements)} SQL statements, first: {statements[0][:200]}"


@pytest.fixture(autouse=True)
def _cheap_password_hashes(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Still argon2, with minimal cost parameters: fixtures create and log in many users, and production cost
    (64 MiB, 3 passes, each hash) dominated the audit and cases tests. Tests of hashing itself are marked
    `real_password_hash` and keep the production hasher. Verifying reads the cost from the hash, so a server
    subprocess checks these cheap hashes cheaply too."""
    if request.node.get_closest_marker("real_password_hash"):
        return
    from argon2 import PasswordHasher

    from casemgr.users import service

    monkeypatch.setattr(service, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


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
def make_case() -> Callable[..., int]:
    """make_case(subject=, description=, case_type=, at=, **CaseCreate fields) -> id of a case stored through
    cases.service.create_case (routed, audited) with a customer party; `at` pins its creation time."""
    return _make_case


def _make_case(subject: str = "Card charged twice", description: str = "I was charged twice for one order.",
               case_type: str = "complaint", *, at: Any = None, actor: str = "user:test", **kw: Any) -> int:
    from casemgr.cases import service
    from casemgr.cases.schemas import CaseCreate, PartyIn
    from casemgr.db import write_session

    kw.setdefault("party", PartyIn(name="Pat Doe", email="pat@example.com"))
    kw.setdefault("fields", {"counterparty": "ACME"} if case_type == "contract" else {})
    with write_session() as s:
        c = service.create_case(s, CaseCreate(case_type=case_type, subject=subject, description=description, **kw),
                                actor=actor, created_at=at)
        return int(c.id or 0)


@pytest.fixture
def matrix_ids(make_case: Callable[..., int]) -> dict[str, int]:
    """Real ids for the path parameters of every route (a case, its task, a user, an API key): the role x route
    matrices (tests/web/test_access_matrix.py, tests/security/test_api_key_matrix.py) request real objects."""
    from sqlalchemy import select

    from casemgr.cases.models import Task
    from casemgr.db import read_session, write_session
    from casemgr.users import service as users

    case_id = make_case()
    with read_session() as s:
        task_id = s.execute(select(Task.id).where(Task.case_id == case_id)).scalars().first()
    with write_session() as s:
        u = users.create_user(s, "matrix-target", "correct-horse-battery", ["agent"])
        key, _ = users.create_api_key(s, "matrix-key", u.id)
        return {"case_id": case_id, "task_id": int(task_id or 0), "user_id": int(u.id or 0), "key_id": int(key.id or 0)}


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


class MailSink:
    """A real SMTP server on loopback standing in for the outbound relay: records every delivery.

    `hold_s` keeps the next delivery waiting that long before its 250 (a worker can be killed meanwhile);
    `in_data` is set when a delivery arrives.
    """

    def __init__(self) -> None:
        self.host = "127.0.0.1"
        self.port = 0
        self.messages: list[dict[str, Any]] = []
        self.in_data = threading.Event()
        self.hold_s = 0.0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.in_data.set()
        if self.hold_s:
            hold, self.hold_s = self.hold_s, 0.0
            await asyncio.sleep(hold)
        data = envelope.original_content or envelope.content
        with self._lock:
            self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos), "data": data,
                                  "message_id": str(message_from_bytes(data)["Message-ID"])})
        return "250 OK"

    @property
    def env(self) -> dict[str, str]:
        """Settings that point casemgr (this process or a subprocess) at this relay."""
        return {"CASEMGR_SMTP_RELAY_HOST": self.host, "CASEMGR_SMTP_RELAY_PORT": str(self.port)}


def drain_jobs() -> dict[str, int]:
    """Run every job that is due now, as `casemgr worker --once` does: AI enrichment happens there, after the
    intake commit, by default (CASEMGR_AI_INLINE=false) in tests as in a served app."""
    from casemgr.worker import Worker

    return Worker(schedule=False, poll_s=0.0).run(once=True)


@pytest.fixture
def run_jobs() -> Callable[[], dict[str, int]]:
    """run_jobs() drains the job queue once (see drain_jobs)."""
    return drain_jobs


@pytest.fixture
def smtp_sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[MailSink]:
    """A loopback SMTP relay sink; this process's settings point at it."""
    sink = MailSink()
    sink.port = free_port()
    controller = Controller(sink, hostname=sink.host, port=sink.port)
    controller.start()
    for k, v in sink.env.items():
        monkeypatch.setenv(k, v)
    rebuild()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def intake_smtp() -> Iterator[tuple[str, int]]:
    """The real intake SMTP server on a free loopback port."""
    from casemgr.intake.smtp import make_controller

    port = free_port()
    controller = make_controller("127.0.0.1", port)
    controller.start()
    try:
        yield "127.0.0.1", port
    finally:
        controller.stop()


@pytest.fixture
def single_person_publish(monkeypatch: pytest.MonkeyPatch) -> None:
    """CASEMGR_SINGLE_PERSON_PUBLISH=true: a governance lead's change request is published at once. For tests of
    the publish/rollback mechanics; tests of four eyes itself (tests/governance/test_four_eyes.py) leave it off."""
    from casemgr.runtime import rebuild

    monkeypatch.setenv("CASEMGR_SINGLE_PERSON_PUBLISH", "true")
    rebuild()
