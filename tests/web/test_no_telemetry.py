"""Requests do not consult OpenTelemetry (casemgr configures none; FastAPI's built-in checks cost CPU on every
request, issue 23)."""

from __future__ import annotations

from typing import Any

import pytest
from opentelemetry import metrics, trace


def test_a_request_never_asks_for_a_tracer_or_meter_provider(client: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    real_tracer, real_meter = trace.get_tracer_provider, metrics.get_meter_provider
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: asked.append("tracer") or real_tracer())
    monkeypatch.setattr(metrics, "get_meter_provider", lambda: asked.append("meter") or real_meter())
    assert client.get("/login").status_code == 200
    assert client.post("/api/intake", json={"subject": "x"}).status_code == 401
    assert asked == []
