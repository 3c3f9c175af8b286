"""Intake fixtures: a real SMTP sink (outbound relay) and the real intake SMTP server, both on loopback."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from casemgr.config import reset_settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Sink:
    host: str
    port: int
    messages: list[dict[str, Any]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append({"from": envelope.mail_from, "to": list(envelope.rcpt_tos),
                              "data": envelope.original_content or envelope.content})
        return "250 OK"


@pytest.fixture
def smtp_sink(monkeypatch: pytest.MonkeyPatch) -> Iterator[Sink]:
    """A loopback SMTP server standing in for the outbound relay; settings point at it."""
    port = free_port()
    sink = Sink("127.0.0.1", port)
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("CASEMGR_SMTP_RELAY_HOST", "127.0.0.1")
    monkeypatch.setenv("CASEMGR_SMTP_RELAY_PORT", str(port))
    reset_settings()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def intake_smtp() -> Iterator[tuple[str, int]]:
    """The real intake SMTP server on a free loopback port."""
    from casemgr.intake.smtp import make_controller

    port = free_port()
    controller = make_controller("127.0.0.1", port)
    controller.start()
    try:
        yield "127.0.0.1", port
    finally:
        controller.stop()


@pytest.fixture
def run_mail_jobs() -> Any:
    return _run_mail_jobs


def _run_mail_jobs() -> int:
    """Run queued mail.send jobs through the real worker path (claim + run_claimed); returns how many ran."""
    from sqlalchemy import select

    from casemgr.db import read_session
    from casemgr.intake import outbound  # noqa: F401 - registers the handler
    from casemgr.jobs import service as jobs
    from casemgr.jobs.models import Job

    with read_session() as s:
        ids = list(s.execute(select(Job.id).where(Job.kind == "mail.send", Job.status == "queued")).scalars())
    for job_id in ids:
        from sqlalchemy import update

        from casemgr.clock import now
        from casemgr.db import write_session

        with write_session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(status="running", locked_by="test",
                                                                 locked_until=now(), attempts=Job.attempts + 1))
        assert jobs.run_claimed(job_id, "test") == "done"
    return len(ids)


@pytest.fixture
def shared_eml() -> list[Any]:
    from pathlib import Path

    folder = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "eml"
    files = sorted(folder.glob("*.eml"))
    if not files:
        pytest.skip("shared eml corpus not available")
    return files
