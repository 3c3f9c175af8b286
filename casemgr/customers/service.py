"""A customer is everyone who wrote from one email address: their parties, cases and known addresses."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session, col

from casemgr.cases.models import Case, Party
from casemgr.intake.models import Message

MAX_CASES = 200


@dataclass
class CustomerView:
    email: str
    names: list[str]
    addresses: list[str]
    cases: list[Case]


def normalise(email: str) -> str:
    return email.strip().lower()


def party_ids(session: Session, email: str) -> list[int]:
    q = select(col(Party.id)).where(func.lower(col(Party.email)) == normalise(email)).limit(1000)
    return [int(i) for i in session.execute(q).scalars()]


def customer(session: Session, email: str, *, limit: int = MAX_CASES) -> CustomerView:
    """The customer's cases (newest first, open and closed) and every address seen for them: party emails,
    and message senders on their cases."""
    ids = party_ids(session, email)
    cases: list[Case] = []
    names: list[str] = []
    addresses = [normalise(email)]
    if ids:
        cases = list(session.execute(select(Case).where(col(Case.party_id).in_(ids))
                                     .order_by(col(Case.created_at).desc(), col(Case.id).desc()).limit(limit)).scalars())
        for p in session.execute(select(Party).where(col(Party.id).in_(ids))).scalars():
            if p.name and p.name not in names:
                names.append(p.name)
        case_ids = [c.id for c in cases]
        if case_ids:
            senders = session.execute(select(col(Message.sender)).where(
                col(Message.case_id).in_(case_ids), col(Message.direction) == "inbound",
                col(Message.sender).is_not(None)).distinct().limit(20)).scalars()
            for s in senders:
                addr = _address(s)
                if addr and addr not in addresses:
                    addresses.append(addr)
    return CustomerView(email=normalise(email), names=names, addresses=addresses, cases=cases)


def _address(sender: str | None) -> str | None:
    from email.utils import parseaddr

    if not sender:
        return None
    addr = parseaddr(sender)[1]
    return normalise(addr) if "@" in addr else None
