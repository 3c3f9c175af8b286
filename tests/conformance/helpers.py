"""Shared helpers of the conformance tests: cases with history imported from a legacy system (moves the case
type does not design), and a Petri net of a case type's designed transitions for pm4py."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlmodel import col

from casemgr.cases import service as cases
from casemgr.cases.models import StageHistory
from casemgr.cases.schemas import CaseCreate
from casemgr.db import write_session


def imported_case(case_type: str, stages: list[str], t0: datetime, *, step_h: float = 5.0, closed: bool = False) -> int:
    """A case whose stage history came from elsewhere (an import, or an older version of the type): the visits are
    written as given, whatever the current design allows. Returns the case id."""
    with write_session() as s:
        case = cases.create_case(s, CaseCreate(case_type=case_type, subject=f"imported {'/'.join(stages)}"),
                                 actor="system:import", created_at=t0, route=False)
        s.execute(delete(StageHistory).where(col(StageHistory.case_id) == case.id))
        at = t0
        prev = None
        for i, stage in enumerate(stages):
            left = at + timedelta(hours=step_h) if (i < len(stages) - 1 or closed) else None
            s.add(StageHistory(case_id=case.id, case_type=case_type, stage=stage, from_stage=prev, entered_at=at,
                               left_at=left, actor="system:import"))
            prev = stage
            at = at + timedelta(hours=step_h)
        case.stage = stages[-1]
        s.add(case)
        assert case.id is not None
        return case.id


def petri_net(pm4py: Any, ct: Any, *, stop_anywhere: bool) -> tuple[Any, Any, Any]:
    """One visible transition per stage (between an 'enter' and a 'done' place), one silent transition per
    designed move (done_a -> enter_b), the case starting in the initial stage; the case may end in any stage
    (stop_anywhere) or only in a final one."""
    from pm4py.objects.petri_net.obj import Marking, PetriNet
    from pm4py.objects.petri_net.utils import petri_utils as pu

    net = PetriNet(f"designed-{ct.name}")
    enter, done = {}, {}
    for st in ct.stages:
        enter[st.name], done[st.name] = PetriNet.Place(f"enter_{st.name}"), PetriNet.Place(f"done_{st.name}")
        net.places.update((enter[st.name], done[st.name]))
        t = PetriNet.Transition(f"t_{st.name}", st.name)
        net.transitions.add(t)
        pu.add_arc_from_to(enter[st.name], t, net)
        pu.add_arc_from_to(t, done[st.name], net)
    sink = PetriNet.Place("sink")
    net.places.add(sink)
    for st in ct.stages:
        for target in st.transitions:
            tau = PetriNet.Transition(f"move_{st.name}_{target}", None)
            net.transitions.add(tau)
            pu.add_arc_from_to(done[st.name], tau, net)
            pu.add_arc_from_to(tau, enter[target], net)
        if stop_anywhere or st.final:
            end = PetriNet.Transition(f"end_{st.name}", None)
            net.transitions.add(end)
            pu.add_arc_from_to(done[st.name], end, net)
            pu.add_arc_from_to(end, sink, net)
    im, fm = Marking(), Marking()
    im[enter[ct.first_stage]] = 1
    fm[sink] = 1
    return net, im, fm
