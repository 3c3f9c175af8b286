"""Which rooms react to which case events: the one list (casemgr.cases.events loads it on first publish).

Cases publishes events and imports no listener; a room that reacts to case changes adds one line here.
"""

from __future__ import annotations


def register() -> None:
    from casemgr.cases.events import CaseEventName, connect
    from casemgr.sla.engine import on_case_wait_changed

    # The SLA clock pauses while the case waits on the customer and resumes extended by the paused time.
    connect(CaseEventName.WAIT_CHANGED, on_case_wait_changed)

    # Rule consequences driven by AI-set facts are bound by the AI policy (issue 17).
    from casemgr.cases import ai_gate
    from casemgr.governance.binding import gate, record_held

    ai_gate.register(gate, record_held)
