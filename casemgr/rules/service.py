"""The rules service of the application context: `evaluate(facts) -> Decision` with hot reload.

One RulesService lives in the context (casemgr.runtime.Runtime.rules, built on first use); a new context (other
settings: another database or policies dir) has a new service, so the service never watches the settings.

The rule set in force is the active published version (kind 'rules'), else the files under
<policies_dir>/rules/; casemgr.documents.live.LiveDocument does the cheap check at most once per
CHECK_INTERVAL_S and rebuilds only when the version changes. A new set is validated and compiled outside the
lock, then engines are swapped under ENGINE_LOCK. An evaluation captures the engine and runs entirely under
that lock, so none is ever dropped or sees a half-swapped engine. An invalid new set is refused and the
running one stays active (the problem is logged and kept in `last_error`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from casemgr import runtime
from casemgr.documents.document import Document
from casemgr.documents.live import LiveDocument
from casemgr.rules.compiler import CompiledRuleSet, compile_ruleset
from casemgr.rules.engine import ENGINE_LOCK, Decision, DurableEngine, build_decision
from casemgr.rules.facts import normalize_facts
from casemgr.rules.schema import RuleSource, load_ruleset
from casemgr.rules.store import RULES
from casemgr.rules.store import files_dir as files_dir

log = logging.getLogger(__name__)
CHECK_INTERVAL_S = 1.0


def _build(doc: Document, label: str) -> CompiledRuleSet:
    return compile_ruleset(load_ruleset(RuleSource(files=dict(doc.files))))


class RulesService:
    def __init__(self, *, use_db: bool = True, rules_dir: Path | None = None) -> None:
        self.use_db = use_db
        self.rules_dir = rules_dir
        self._engine: DurableEngine | None = None
        self.live: LiveDocument[CompiledRuleSet] = LiveDocument(
            RULES, _build, interval_s=CHECK_INTERVAL_S, use_db=use_db, path=self._dir, on_change=self.install)
        self.reloads = 0

    def _dir(self) -> Path:
        return self.rules_dir or files_dir()

    @property
    def last_error(self) -> str | None:
        return self.live.last_error

    def refresh_due(self) -> bool:
        """Whether the next evaluate() would look for a new rule set (a database read): async callers run
        refresh() on a worker thread first, so the event loop never waits on that read."""
        return self._engine is None or self.live.due()

    def refresh(self, *, force: bool = False) -> bool:
        """Check for a new active version (rate limited unless forced). True if the engine changed."""
        return self.live.refresh(force=force or self._engine is None)

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
        self.live.reset()


def get_service() -> RulesService:
    """The context's rules service (casemgr.runtime)."""
    return runtime.current().rules


def evaluate(facts: dict[str, Any]) -> Decision:
    """Route one case's facts with the active rule set. Build facts with casemgr.rules.facts."""
    return get_service().evaluate(facts)


def evaluate_case(case: Any) -> Decision:
    from casemgr.rules.facts import facts_from_case

    return evaluate(facts_from_case(case))
