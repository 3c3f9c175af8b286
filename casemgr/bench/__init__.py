"""`casemgr bench`: performance measured against floors taken in the same run (issue 10).

Every benchmark lives here, not in the domain packages: micro-benchmarks of one room (rules.py, ai.py,
intake.py, dashboard.py), the HTTP-level ones (intake_http.py: end-to-end intake vs a bare insert floor;
load.py: mixed load; memory.py) and `bench all`, which gathers everything into one report. cli.py registers
every command in one list.
"""
