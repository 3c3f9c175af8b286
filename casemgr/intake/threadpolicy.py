"""Whether a message that names an existing case may join it (issue 18).

A case reference in a subject ("[CMP-1]"), and even an In-Reply-To header, can be typed by anyone. So:
- a message from the case's customer (or an address already on the thread) joins the case;
- from anyone else, an open case gets the message with a "not the case's customer" warning for agents;
- from anyone else, a closed case is left alone: the message opens a new case linked to it, so a stranger
  can neither reopen nor add to a closed matter;
- the public form never joins an existing case: its sender address is whatever the visitor typed, and its
  confirmation page must not confirm that a reference exists. It opens a new case linked to the named one,
  and the confirmation shows only that new case's reference.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from casemgr.cases.models import Case


def decide(session: Session, case_id: int, sender: str | None, channel: str, thread_by: str | None,
           meta: dict[str, Any]) -> int | None:
    """The case to append to, or None for a new case; `meta` gets known_sender, or linked_case when a new
    case is to be linked to the one the message named."""
    from casemgr.intake.service import _known_sender

    case = session.get(Case, case_id)
    if case is None:
        return None
    known = channel != "form" and _known_sender(session, case, sender)
    meta["known_sender"] = known
    if known:
        return case_id
    if channel == "form" or case.status == "closed":
        why = "sent through the public form" if channel == "form" else "the named case is closed"
        meta["linked_case"] = {"id": case.id, "reference": case.reference, "by": thread_by,
                               "reason": f"{why}; the sender is not that case's customer"}
        return None
    return case_id
