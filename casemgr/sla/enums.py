"""The SLA vocabulary: a case's SLA state (stored in cases.sla_state)."""

from __future__ import annotations

from casemgr.cases.enums import Values


class SlaState(Values):
    NONE = "none"  # the stage has no target
    ON_TRACK = "on_track"
    AT_RISK = "at_risk"  # past the warning share of the target
    BREACHED = "breached"
    PAUSED = "paused"  # waiting on the customer: the clock is stopped

    @classmethod
    def running(cls) -> tuple[SlaState, ...]:
        """States in which the clock runs toward a breach."""
        return (cls.ON_TRACK, cls.AT_RISK)
