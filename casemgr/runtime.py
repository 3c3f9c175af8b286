"""The application context: what a process builds once at start-up and keeps for its whole life.

One `Runtime` holds the settings and everything derived from them: the database engines, the rules service,
the AI policy, the case types (with their SOPs and pinned versions), the SLA calendar, the AI model in force
and the AI provider factory. It is built once by each entry point, `create_app(settings=...)` (kept on
`app.state.runtime`, reached in routes through `casemgr.web.deps.AppRuntime`), the CLI's typer callback and
the worker, and installed as the process's context; code outside a request (jobs, CLI commands, services)
reaches the same object through `current()`, the one accessor. `get_settings()` is `current().settings`.

Parts are built on first use, once (the rules engine compiles only when a case is routed, the ML stack loads
only when the model is asked for). Published documents (rules, AI policy, case types, SOPs, the model) change
at run time in the database: each part is a `LiveDocument` that looks for a new active version (at most once a
second, the AI policy on every call), so a publish in another process is in force within about a second. That
is freshness of data inside the context; the context itself is never rebuilt for it.

A different configuration is a different context: tests build a fresh one per test (`tests/conftest.py`), and
one that changes the environment mid-test builds another with `rebuild()`; nothing else is reset piecemeal.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from casemgr.config import Settings

if TYPE_CHECKING:
    from pathlib import Path

    from sqlalchemy.engine import Engine

    from casemgr.casetypes.registry import Registry
    from casemgr.documents.document import Document
    from casemgr.documents.live import LiveDocument
    from casemgr.governance.policy import Policy
    from casemgr.rules.service import RulesService
    from casemgr.sla.calendar import BusinessCalendar

T = TypeVar("T")


class Runtime:
    """Settings plus the process-wide objects built from them (see the module docstring)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.RLock()
        self._read_engine: Engine | None = None
        self._write_engine: Engine | None = None
        self._parts: dict[str, Any] = {}
        self.closed = False
        # The AI provider is built per use from the settings (casemgr.governance.enrich.get_provider); a test or
        # bench may put another factory here, for this context only.
        self.provider_factory: Callable[[], Any] | None = None

    # -- database engines: one pooled engine for reads, and on SQLite a second one whose transactions begin
    # IMMEDIATE (casemgr.db says why); on PostgreSQL both are the same engine.

    def engine(self, *, write: bool = False) -> Engine:
        engine = self._write_engine if write else self._read_engine
        if engine is None:
            engine = self._make_engine(write)
        return engine

    def _make_engine(self, write: bool) -> Engine:
        from casemgr.db import make_engine

        with self._lock:
            url = self.settings.effective_database_url
            # SQLite writes get their own engine (BEGIN IMMEDIATE, synchronous=FULL) whichever engine is asked for
            # first: deciding it from `write` made every write go through the read engine (no fsync per commit,
            # no write lock at BEGIN) in a process whose first query was a read.
            sqlite = url.startswith("sqlite")
            if self._read_engine is None:
                self._read_engine = make_engine(url, self.settings, immediate=False)
            if self._write_engine is None:
                self._write_engine = make_engine(url, self.settings, immediate=True) if sqlite else self._read_engine
            return self._write_engine if write else self._read_engine

    def dispose_engines(self) -> None:
        """Close every pooled connection (before a restore replaces the database file, and on close)."""
        with self._lock:
            engines = {id(e): e for e in (self._read_engine, self._write_engine) if e is not None}
            self._read_engine = self._write_engine = None
        for engine in engines.values():
            engine.dispose()

    # -- parts built on first use. The builders below import their module only when they run (once per context):
    # the properties sit on hot paths (every routed case, every AI decision), where an import per call cost
    # microseconds.

    def part(self, name: str, build: Callable[[Runtime], T]) -> T:
        """The part called `name`, built by `build(self)` the first time it is asked for."""
        try:
            return self._parts[name]  # type: ignore[no-any-return]
        except KeyError:
            pass
        with self._lock:
            if name not in self._parts:
                self._parts[name] = build(self)
            return self._parts[name]  # type: ignore[no-any-return]

    @property
    def rules(self) -> RulesService:
        """The rules service: evaluate(facts) with the rule set in force (hot reloaded)."""
        return self.part("rules", _build_rules)

    @property
    def policy(self) -> LiveDocument[Policy]:
        """The AI policy in force (checked on every call: a publish binds the next decision)."""
        return self.part("ai-policy", _build_policy)

    @property
    def case_types(self) -> LiveDocument[Registry]:
        """The case types and org in force (for new cases and pages; running cases are pinned)."""
        return self.part("case-types", _build_case_types)

    @property
    def case_type_versions(self) -> OrderedDict[str, Registry]:
        """Built registries of pinned case-type versions, by version (casemgr.casetypes.versions)."""
        return self.part("case-type-versions", lambda rt: OrderedDict())

    @property
    def sops(self) -> LiveDocument[Document]:
        """The SOP set in force."""
        return self.part("sops", _build_sops)

    @property
    def calendar(self) -> BusinessCalendar:
        """The SLA business calendar of the policies dir (a file: read once per context)."""
        return self.part("sla-calendar", _build_calendar)

    @property
    def model(self) -> LiveDocument[Path]:
        """The category model artefact in force (the bundled one until a candidate is activated)."""
        return self.part("ai-model", _build_model)

    def close(self) -> None:
        """Release what the context holds (engines, the rules engine). Safe to call twice."""
        with self._lock:
            parts, self._parts, self.closed = self._parts, {}, True
        rules = parts.get("rules")
        if rules is not None:
            rules.close()
        self.dispose_engines()


# -- builders of the parts (each imports its domain module on first use only: start-up stays light)


def _build_rules(rt: Runtime) -> RulesService:
    from casemgr.rules.service import RulesService

    return RulesService()


def _build_policy(rt: Runtime) -> LiveDocument[Policy]:
    from casemgr.governance.policy import new_live_policy

    return new_live_policy()


def _build_case_types(rt: Runtime) -> LiveDocument[Registry]:
    from casemgr.casetypes.registry import new_live_registry

    return new_live_registry()


def _build_sops(rt: Runtime) -> LiveDocument[Document]:
    from casemgr.casetypes.sops import new_live_sops

    return new_live_sops()


def _build_calendar(rt: Runtime) -> BusinessCalendar:
    from casemgr.sla.calendar import load_calendar

    return load_calendar(rt.settings.policies_dir / "sla-calendar.yaml")


def _build_model(rt: Runtime) -> LiveDocument[Path]:
    from casemgr.learning.model_doc import new_live_model

    return new_live_model()


_current: Runtime | None = None
_install_lock = threading.Lock()


def build(settings: Settings | None = None) -> Runtime:
    """A new context for `settings` (default: read from the CASEMGR_* environment now)."""
    return Runtime(settings if settings is not None else Settings())


def install(runtime: Runtime) -> Runtime:
    """Make `runtime` this process's context; the one it replaces is closed."""
    global _current
    with _install_lock:
        previous, _current = _current, runtime
    if previous is not None and previous is not runtime:
        previous.close()
    return runtime


def current() -> Runtime:
    """This process's context. A process whose entry point built none (a script, a library call) gets one built
    from the environment on first use, once."""
    rt = _current
    if rt is None:
        with _install_lock:
            rt = _current
            if rt is None:
                rt = _set_default()
    return rt


def _set_default() -> Runtime:
    global _current
    _current = build()
    return _current


def installed() -> Runtime | None:
    """The context installed, if any (without building one)."""
    return _current


def rebuild(settings: Settings | None = None) -> Runtime:
    """Build and install a new context (the environment changed: tests, a bench switching databases)."""
    return install(build(settings))


def close_current() -> None:
    """Close and forget this process's context (test teardown)."""
    global _current
    with _install_lock:
        previous, _current = _current, None
    if previous is not None:
        previous.close()
