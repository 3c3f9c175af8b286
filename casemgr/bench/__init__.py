"""`casemgr bench`: performance measured against floors taken in the same run (issue 10).

Rooms own their micro-benchmarks (casemgr/rules/bench.py, casemgr/ai/bench.py, casemgr/intake/bench.py,
casemgr/metrics/bench.py); this package adds the HTTP-level ones (end-to-end intake vs a bare insert floor,
mixed load, memory) and `bench all`, which gathers everything into one report.
"""
