"""The owner matrix (issue 21): each decision kind, the role that owns its outcome, who holds that role today,
and the gaps (a kind whose owner role nobody active holds: its suggestions would wait for nobody).

Kinds come from the decision-kind registry (casemgr.governance.kinds), owners from the active AI policy, people
from users/user_roles, so the matrix cannot drift from any of them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from casemgr.governance import kinds
from casemgr.governance.policy import Policy, active_policy
from casemgr.users.models import User, UserRole


def holders(session: Session) -> dict[str, list[str]]:
    """role -> usernames of active users holding it, sorted."""
    out: dict[str, list[str]] = {}
    rows = session.execute(
        select(col(UserRole.role), col(User.username)).join(User, col(User.id) == col(UserRole.user_id))
        .where(col(User.active).is_(True)).order_by(col(UserRole.role), col(User.username))
    ).all()
    for role, name in rows:
        out.setdefault(str(role), []).append(str(name))
    return out


def owner_matrix(session: Session, policy: Policy | None = None) -> dict[str, Any]:
    """{policy_version, rows: [{kind, mode, owner, threshold, people, gap, governed}], gaps: [kind...]}.

    A kind the policy does not govern is listed too (governed false): AI never decides it. A gap is a governed
    kind (mode auto or suggest) whose owner role has no active holder."""
    policy = policy or active_policy(session)
    people = holders(session)
    rows = []
    for kind in sorted(kinds.all_kinds(), key=lambda k: k.name):
        dp = policy.decision(kind.name)
        owner = dp.owner if dp else None
        who = people.get(owner, []) if owner else []
        governed = dp is not None and dp.mode != "never"
        rows.append({"kind": kind.name, "mode": dp.mode if dp else "never", "owner": owner,
                     "threshold": dp.threshold if dp else None, "people": who, "governed": governed,
                     "gap": governed and not who})
    return {"policy_version": policy.version, "rows": rows, "gaps": [r["kind"] for r in rows if r["gap"]]}
