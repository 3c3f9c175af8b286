"""One counter per key and fixed time window; two adjacent windows give a sliding estimate."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column
from sqlmodel import Field, SQLModel


class RateCounter(SQLModel, table=True):
    __tablename__ = "rate_counters"
    key: str = Field(primary_key=True, max_length=200)  # "<purpose>:<client>", e.g. "form:203.0.113.9"
    window_start: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))  # epoch s
    count: int = 0
