"""/metrics: Prometheus text exposition.

Totals come from the database, not from in-process counters: every app process and host reports the same
figures (an in-process counter would count only its own share). The heavy aggregates (counts over millions of
rows) are read from the snapshot the worker refreshes (`metrics.refresh`); its age is exported too, so an
alert can fire when the worker stops. Only the cheap, indexed SLA breach count is read live.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import func, select
from sqlmodel import Session

from casemgr.audit.models import AuditEvent
from casemgr.clock import now
from casemgr.metrics.service import AI_LATENCY_BUCKETS_MS, live_snapshot


class _DbCollector:
    def __init__(self, session: Session) -> None:
        self.session = session

    def collect(self) -> Iterator[Any]:
        s = self.session
        live, computed_at = live_snapshot(s)
        c = CounterMetricFamily("casemgr_cases_created", "Cases created", labels=["case_type"])
        for ct, n in sorted(live.get("cases_by_type", {}).items()):
            c.add_metric([ct], n)
        yield c
        t = CounterMetricFamily("casemgr_transitions", "Stage transitions", labels=["case_type"])
        for ct, n in sorted(live.get("transitions_by_type", {}).items()):
            t.add_metric([ct], n)
        yield t
        b = CounterMetricFamily("casemgr_sla_breaches", "SLA breaches detected by the worker")
        b.add_metric([], s.execute(select(func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.action == "sla.breached")).scalar_one())
        yield b
        calls = CounterMetricFamily("casemgr_ai_calls", "AI calls", labels=["capability", "provider", "result"])
        lat = HistogramMetricFamily("casemgr_ai_call_latency_seconds", "AI call latency", labels=["capability"])
        per_cap: dict[str, list[float]] = {}
        for row in live.get("ai_calls", []):
            n, errors = row["n"], row["errors"]
            calls.add_metric([row["capability"], row["provider"], "ok"], n - errors)
            calls.add_metric([row["capability"], row["provider"], "error"], errors)
            acc = per_cap.setdefault(row["capability"], [0.0, 0.0] + [0.0] * len(AI_LATENCY_BUCKETS_MS))
            acc[0] += n
            acc[1] += row["latency_ms_sum"] / 1000.0
            for i, v in enumerate(row["le"]):
                acc[2 + i] += v
        for cap, acc in sorted(per_cap.items()):
            buckets = [(str(ms / 1000), acc[2 + i]) for i, ms in enumerate(AI_LATENCY_BUCKETS_MS)]
            buckets.append(("+Inf", acc[0]))
            lat.add_metric([cap], buckets, acc[1])
        yield calls
        yield lat
        q = GaugeMetricFamily("casemgr_queue_depth", "Open cases per queue", labels=["queue"])
        depth: dict[str, int] = {}
        for r in live.get("backlog", []):
            depth[r["queue"]] = depth.get(r["queue"], 0) + r["n"]
        for name, n in sorted(depth.items()):
            q.add_metric([name], n)
        yield q
        age = GaugeMetricFamily("casemgr_metrics_snapshot_age_seconds", "Age of the figures above (worker refresh)")
        age.add_metric([], max((now() - computed_at).total_seconds(), 0.0))
        yield age


def render_metrics(session: Session) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DbCollector(session))  # type: ignore[arg-type]
    return generate_latest(registry), CONTENT_TYPE_LATEST
