"""Job handlers of the governance room, imported by the worker: `ai.enrich` (casemgr.governance.enrich)."""

from __future__ import annotations

from casemgr.governance import enrich as _enrich  # noqa: F401 - importing registers @job_handler("ai.enrich")

__all__ = ["_enrich"]
