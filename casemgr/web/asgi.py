"""ASGI entry point for uvicorn workers (`casemgr serve`): `casemgr.web.asgi:app`.

A served app leaves AI enrichment to `casemgr worker` (the default, CASEMGR_AI_INLINE=false, as in tests):
inline, the local model would add about 170 MB to every app worker and tens of milliseconds of CPU to each
intake request, inside its write transaction (issue 10 profile). With CASEMGR_AI_INLINE=true the model is
loaded here, at start-up, so the first intake does not load it while holding SQLite's write lock.
"""

import gc
import logging

from casemgr import gcpolicy
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
gcpolicy.tune_long_running_process()  # young collections less often: see casemgr.gcpolicy
