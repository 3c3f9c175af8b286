"""The floor: a bare FastAPI endpoint that inserts one row into the same database, nothing else.

Served by the same uvicorn settings (uvloop, httptools, same worker count) and through the same engine
(casemgr.db: WAL, synchronous=FULL on writes, busy_timeout, BEGIN IMMEDIATE on SQLite; the same pool on PostgreSQL),
so `intake / floor` isolates what casemgr's intake adds on top of one durable insert.
Run: `uvicorn casemgr.bench.floor:app`.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Text, insert

from casemgr.clock import now
from casemgr.db import get_engine, write_session

metadata = MetaData()
floor_rows = Table(
    "bench_floor", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("subject", String(500), nullable=False),
    Column("body", Text, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)


def create_table() -> None:
    metadata.create_all(get_engine(write=True))


def drop_table() -> None:
    metadata.drop_all(get_engine(write=True))


class Item(BaseModel):
    subject: str
    body: str = ""
    sender: dict[str, Any] | None = None
    external_id: str | None = None


app = FastAPI()


@app.post("/floor", status_code=201)
def store(item: Item) -> dict[str, str]:
    with write_session() as session:
        session.execute(insert(floor_rows).values(subject=item.subject, body=item.body, created_at=now()))
    return {"status": "stored"}
