"""Routers, CLI commands, job handler modules and schedules are each registered in one list, and a module
that cannot be imported fails loudly instead of being skipped."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
import typer

PACKAGE = Path(__file__).resolve().parents[2] / "casemgr"


def test_every_listed_handler_module_imports_and_the_kinds_are_complete() -> None:
    from casemgr import worker
    from casemgr.jobs.service import HANDLERS

    for name in worker.HANDLER_MODULES:
        importlib.import_module(name)  # raises if a listed module does not exist
    worker.load_handlers()
    expected = {"sla.scan", "renewal.scan", "metrics.refresh", "jobs.prune", "ai.enrich", "mail.send"}
    assert expected <= set(HANDLERS)
    assert {kind for kind, _ in worker.SCHEDULES} <= set(HANDLERS)


def test_a_missing_handler_module_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    from casemgr import worker

    monkeypatch.setattr(worker, "HANDLER_MODULES", (*worker.HANDLER_MODULES, "casemgr.no_such_room.jobs"))
    with pytest.raises(ModuleNotFoundError, match="no_such_room"):
        worker.load_handlers()


def test_a_scheduled_kind_without_handler_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    from casemgr import worker

    monkeypatch.setattr(worker, "SCHEDULES", (*worker.SCHEDULES, ("nobody.handles", lambda: 60.0)))
    with pytest.raises(RuntimeError, match="nobody.handles"):
        worker.load_handlers()


def test_a_missing_router_module_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from casemgr.web import app as app_module

    monkeypatch.setattr(app_module, "ROUTERS", (*app_module.ROUTERS, "casemgr.no_such_room.routes"))
    with pytest.raises(ModuleNotFoundError, match="no_such_room"):
        app_module.create_app()


def test_every_listed_router_is_mounted() -> None:
    from casemgr.web import app as app_module

    app = app_module.create_app()
    paths = set(app.openapi()["paths"])
    for ref in app_module.ROUTERS:
        router = app_module._load(ref)
        own = {route.path for route in router.routes if getattr(route, "include_in_schema", False)}
        assert own <= paths, f"{ref}: {sorted(own - paths)} not served"


def test_a_missing_cli_module_fails_loudly() -> None:
    from casemgr.cli import register_commands

    with pytest.raises(ModuleNotFoundError, match="no_such_room"):
        register_commands(typer.Typer(), (("casemgr.no_such_room.cli", "app", "nothing"),))


def test_bench_commands_live_in_casemgr_bench() -> None:
    from casemgr.bench.cli import COMMANDS

    stray = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.glob("*/bench.py"))
    assert stray == []
    assert {"all", "rules", "ai", "intake", "intake-http", "dashboard", "load", "memory", "pages", "review",
            "pipe", "soak", "scaleout", "jobs"} == set(COMMANDS)
