"""The process-wide rules service: `evaluate(facts) -> Decision` with hot reload.

Where the active rule set comes from:
1. the active row of policy_versions (kind='rules'), when one was published, else
2. the files under <policies_dir>/rules/ (a development default; edits are picked up too).

At most once per CHECK_INTERVAL_S each process asks "which version is active?" (one indexed query, or a
few stat() calls for files). On a change it validates and compiles the new set outside the lock, then
swaps engines under ENGINE_LOCK. An evaluation captures the engine and runs entirely under that lock, so
none is ever dropped or sees a half-swapped engine. An invalid new set is refused and the running one
stays active (the problem is logged and kept in `last_error`).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

from casemgr.rules.compiler import CompiledRuleSet, compile_ruleset
from casemgr.rules.engine import ENGINE_LOCK, Decision, DurableEngine, build_decision
from casemgr.rules.facts import normalize_facts
from casemgr.rules.schema import RuleSource, load_ruleset

log = logging.getLogger(__name__)
CHECK_INTERVAL_S = 1.0


def _settings() -> Any:
    from casemgr.config import get_settings

    return get_settings()


def files_dir() -> Path:
    from casemgr.config import get_settings

    return Path(get_settings().policies_dir) / "rules"


def _files_stamp(d: Path) -> tuple[tuple[str, int, int], ...]:
    try:
        return tuple(
            (p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted(d.glob("*.y*ml"))
        )
    except OSError:
        return ()


class RulesService:
    def __init__(self, *, use_db: bool = True, rules_dir: Path | None = None) -> None:
        self.use_db = use_db
        self.rules_dir = rules_dir
        self._engine: DurableEngine | None = None
        self._source_key: Any = None  # ("db", version) or ("files", stamp)
        self._next_check = 0.0
        self._reload_lock = threading.Lock()  # one reload at a time; evaluations do not wait for it
        self.reloads = 0
        self.last_error: str | None = None
        self._settings_id = id(_settings())

    # -- loading

    def _dir(self) -> Path:
        return self.rules_dir or files_dir()

    def _wanted(self) -> tuple[Any, Any]:
        """(key, loader) of the rule set that should be active now."""
        if self.use_db:
            try:
                from casemgr.db import read_session
                from casemgr.rules import store

                with read_session() as s:
                    version = store.active_version(s)
                if version is not None:
                    return ("db", version), self._load_db
            except Exception as exc:  # noqa: BLE001 - no DB / table yet: fall back to files
                log.debug("rules: no database version (%s)", exc)
        d = self._dir()
        return ("files", str(d), _files_stamp(d)), lambda: RuleSource.from_path(d)

    @staticmethod
    def _load_db() -> RuleSource:
        from casemgr.db import read_session
        from casemgr.rules import store

        with read_session() as s:
            row = store.active_row(s)
            if row is None:
                raise RuntimeError("active rules version disappeared")
            return store.source_of(row)

    def refresh_due(self) -> bool:
        """Whether the next evaluate() would look for a new rule set (a database read): async callers run
        refresh() on a worker thread first, so the event loop never waits on that read."""
        return self._engine is None or time.monotonic() >= self._next_check or id(_settings()) != self._settings_id

    def refresh(self, *, force: bool = False) -> bool:
        """Check for a new active version (rate limited unless forced). True if the engine changed."""
        now = time.monotonic()
        settings_id = id(_settings())
        if settings_id != self._settings_id:
            # Settings were reset (tests, reconfiguration): the database or policies dir may differ.
            self._settings_id, force = settings_id, True
        if not force and self._engine is not None and now < self._next_check:
            return False
        if not self._reload_lock.acquire(blocking=self._engine is None or force):
            return False  # another thread is already reloading; keep serving the current engine
        try:
            self._next_check = time.monotonic() + CHECK_INTERVAL_S
            key, loader = self._wanted()
            if key == self._source_key and self._engine is not None:
                return False
            try:
                crs = compile_ruleset(load_ruleset(loader()))
            except Exception as exc:
                self.last_error = str(exc)
                self._source_key = key  # don't retry the same broken content every second
                log.error("rules: refusing new rule set, keeping %s:\n%s",
                          self._engine.version if self._engine else "none", exc)
                if self._engine is None:
                    raise
                return False
            self.last_error = None
            self._source_key = key
            return self.install(crs)
        finally:
            self._reload_lock.release()

    def install(self, crs: CompiledRuleSet) -> bool:
        """Swap in a compiled rule set (no-op if it is the running version)."""
        if self._engine is not None and self._engine.version == crs.version:
            return False
        new = DurableEngine(crs)
        with ENGINE_LOCK:
            old, self._engine = self._engine, new
            if old is not None:
                old.close()
        self.reloads += 1
        log.info("rules: active version %s", crs.version)
        return True

    # -- evaluation

    @property
    def version(self) -> str | None:
        return self._engine.version if self._engine else None

    @property
    def compiled(self) -> CompiledRuleSet:
        if self._engine is None:
            self.refresh(force=True)
        assert self._engine is not None
        return self._engine.crs

    def evaluate(self, facts: dict[str, Any]) -> Decision:
        self.refresh()
        f = normalize_facts(facts)
        with ENGINE_LOCK:
            engine = self._engine  # captured under the lock: a swap cannot close it mid-evaluation
            assert engine is not None
            fired, derived = engine.fire(f)
        return build_decision(engine.crs, f, fired, derived)

    def close(self) -> None:
        with ENGINE_LOCK:
            if self._engine is not None:
                self._engine.close()
                self._engine = None
                self._source_key = None


_service: RulesService | None = None
_service_lock = threading.Lock()


def get_service() -> RulesService:
    global _service
    if _service is None:
        with _service_lock:
            if _service is None:
                _service = RulesService()
    return _service


def reset_service() -> None:
    """Forget the process-wide service (tests switch data dirs and policies between cases)."""
    global _service
    with _service_lock:
        if _service is not None:
            _service.close()
        _service = None


def evaluate(facts: dict[str, Any]) -> Decision:
    """Route one case's facts with the active rule set. Build facts with casemgr.rules.facts."""
    return get_service().evaluate(facts)


def evaluate_case(case: Any) -> Decision:
    from casemgr.rules.facts import facts_from_case

    return evaluate(facts_from_case(case))
