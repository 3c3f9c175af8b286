"""How often a long-running casemgr process (served app, worker) runs Python's garbage collector (issue 23).

Python collects its youngest generation every 700 container allocations. A served intake request or a worker's
enrichment batch allocates thousands of objects that live until the request's group commit or the batch's write
(tens of milliseconds): at the default, several young collections run meanwhile and promote them, and the promoted
garbage sets off full collections, which walk every object not frozen and hold every thread. Measured:
- served API intake at 32 clients: ~150 young collections a second and a full one (10-60 ms, every request in
  flight held) about once a second; with 10,000, three young ones a second and no full one in a 30 s run.
- the AI drain, 2,000 cases: 12 full collections, 1.0-1.1 s of 9.6 s; with 10,000 none, and 219 -> 241 cases/s.
Cycles are still collected, in fewer, larger young passes (~2 ms each).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 10_000


def tune_long_running_process() -> None:
    """Young collections every YOUNG_THRESHOLD allocations; the older generations keep Python's ratios."""
    gc.set_threshold(YOUNG_THRESHOLD, *gc.get_threshold()[1:])
