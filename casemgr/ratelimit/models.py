"""One counter per key and fixed time window; two adjacent windows give a sliding estimate."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel


class RateCounter(SQLModel, table=True):
    __tablename__ = "rate_counters"
    key: str = Field(primary_key=True, max_length=200)  # "<purpose>:<client>", e.g. "form:203.0.113.9"
    window_start: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))  # epoch s
    count: int = 0


class Backoff(SQLModel, table=True):
    """Failures of one key (a username, a client address) and when the next attempt is allowed.

    Growing delays instead of a hard lock (issue 18): each failure past a free allowance doubles the wait, up to
    a cap, so guessing stays slow while the owner of an attacked account gets in after at most the cap.
    """

    __tablename__ = "rate_backoffs"
    key: str = Field(primary_key=True, max_length=200)
    failures: int = 0
    last_failure: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))  # epoch s
    blocked_until: float = 0.0  # epoch s
