"""ASGI entry point for uvicorn workers (`casemgr serve`): `casemgr.web.asgi:app`.

A served app leaves AI enrichment to `casemgr worker` (the default, CASEMGR_AI_INLINE=false, as in tests):
inline, the local model would add about 170 MB to every app worker and tens of milliseconds of CPU to each
intake request, inside its write transaction (issue 10 profile). With CASEMGR_AI_INLINE=true the model is
loaded here, at start-up, so the first intake does not load it while holding SQLite's write lock.
"""

import gc
import logging

from casemgr.config import get_settings
from casemgr.web.app import create_app


def _warm_ai() -> None:
    try:
        from casemgr.ai.providers import get_provider
        from casemgr.governance.enrich import is_local

        provider = get_provider()
        if is_local(provider):
            provider.classify("warm-up")
    except Exception:  # noqa: BLE001 - AI trouble must not stop the service; intake queues AI work then
        logging.getLogger(__name__).exception("AI warm-up failed; AI work will be queued for the worker")


if get_settings().ai_inline:
    _warm_ai()

app = create_app()

# Everything loaded so far (modules, routes, models, rules) lives as long as the process. Frozen, it is left out of
# the garbage collector's full passes, which otherwise walk it all and stall requests for tens of milliseconds.
gc.freeze()
# Young collections every YOUNG_GC_THRESHOLD allocations instead of Python's 700. At 32 concurrent intake requests
# the default ran ~150 young collections a second, so each request's objects, alive for the ~50 ms it waits for its
# group commit, were promoted to the old generation and set off a full collection about once a second (10-60 ms,
# every request in flight held). With 10,000: 3 young collections a second and a full one rarely; the API's p99
# over six 2,000-request rounds went from a median of 109 to 95 ms, its rate from 529 to 561/s (issue 23).
YOUNG_GC_THRESHOLD = 10_000
gc.set_threshold(YOUNG_GC_THRESHOLD, *gc.get_threshold()[1:])
