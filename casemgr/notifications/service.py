"""Create, list, count and mark notifications; parse @mentions out of note text.

Notifications are written in the caller's transaction, so a change and the notice about it commit together.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select, update
from sqlmodel import Session, col

from casemgr.clock import now
from casemgr.notifications.enums import NotificationKind
from casemgr.notifications.models import Notification
from casemgr.users.models import User

# @username at a word start; usernames are letters, digits, dot, dash, underscore (trailing dot = punctuation).
MENTION = re.compile(r"(?<![\w@.])@([A-Za-z0-9_][A-Za-z0-9_.-]{0,99})")
MAX_MENTIONS = 20


def mentioned_usernames(text: str) -> list[str]:
    seen: list[str] = []
    for m in MENTION.finditer(text):
        name = m.group(1).rstrip(".-")
        if name and name not in seen:
            seen.append(name)
    return seen[:MAX_MENTIONS]


def notify(session: Session, user_id: int, kind: NotificationKind, text: str, *, case_id: int | None = None,
           actor: str = "system", at: datetime | None = None) -> Notification:
    n = Notification(user_id=user_id, kind=kind.value, case_id=case_id, actor=actor, text=text[:500],
                     created_at=at or now())
    session.add(n)
    return n


def notify_mentions(session: Session, text: str, *, case_id: int, case_ref: str, actor: str,
                    actor_user_id: int | None) -> list[str]:
    """Notify every active user @mentioned in `text` (not the author); returns the usernames notified."""
    names = mentioned_usernames(text)
    if not names:
        return []
    users = session.execute(select(User).where(col(User.username).in_(names), col(User.active).is_(True))).scalars().all()
    done = []
    for u in users:
        if u.id is None or u.id == actor_user_id:
            continue
        snippet = " ".join(text.split())[:200]
        notify(session, u.id, NotificationKind.MENTION, f"{actor} mentioned you on {case_ref}: {snippet}",
               case_id=case_id, actor=actor)
        done.append(u.username)
    return sorted(done)


def unread_count(session: Session, user_id: int) -> int:
    q = select(func.count()).select_from(Notification).where(col(Notification.user_id) == user_id,
                                                             col(Notification.read_at).is_(None))
    return int(session.execute(q).scalar_one())


def recent(session: Session, user_id: int, *, unread_only: bool = False, limit: int = 50) -> list[Notification]:
    q = select(Notification).where(col(Notification.user_id) == user_id)
    if unread_only:
        q = q.where(col(Notification.read_at).is_(None))
    return list(session.execute(q.order_by(col(Notification.id).desc()).limit(limit)).scalars())


def mark_read(session: Session, user_id: int, ids: Iterable[int] | None = None) -> int:
    """Mark the given notifications (or all) of this user read; returns how many changed."""
    stmt = update(Notification).where(col(Notification.user_id) == user_id, col(Notification.read_at).is_(None))
    if ids is not None:
        stmt = stmt.where(col(Notification.id).in_(list(ids)))
    return int(session.execute(stmt.values(read_at=now())).rowcount)  # type: ignore[attr-defined]


def notify_note_mentions(session: Session, case_id: int, body: str, username: str, user_id: int | None) -> list[str]:
    """After a note is added (page or API): tell the users it @mentions."""
    from casemgr.cases.models import Case

    case = session.get(Case, case_id)
    ref = (case.reference if case else None) or str(case_id)
    return notify_mentions(session, body, case_id=case_id, case_ref=ref, actor=username, actor_user_id=user_id)


def notify_owner(session: Session, case: object, kind: NotificationKind, text: str, *, actor: str = "system") -> bool:
    """Tell the case's assignee (if any) about something on their case: a customer reply, an SLA warning."""
    assignee = getattr(case, "assignee_id", None)
    if assignee is None:
        return False
    ref = getattr(case, "reference", None) or str(getattr(case, "id", ""))
    notify(session, assignee, kind, f"{ref}: {text}", case_id=getattr(case, "id", None), actor=actor)
    return True
