"""Conformance of the event log to the designed process (issue 22, monitor and optimise).

`model` reads the designed transitions of a case type, `analysis` replays one trace at a time against them
(pure), `log` streams the traces from stage history and audit, `service` aggregates per case type and keeps the
dashboard's snapshot, `cli` is `casemgr export conformance --json`. The share of conforming cases equals pm4py's
token-based replay on the same XES export (tests/conformance/test_pm4py.py).
"""
