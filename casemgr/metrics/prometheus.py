"""/metrics: Prometheus text exposition, computed from the database at scrape time.

The database is the source of truth, so every app process and host reports the same totals (in-process
counters would each count only their own share). Queue depth comes from the snapshot the worker refreshes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import func, select
from sqlmodel import Session

from casemgr.ai.models import AICall
from casemgr.audit.models import AuditEvent
from casemgr.cases.models import Case, StageHistory
from casemgr.clock import now
from casemgr.metrics.models import MetricSnapshot
from casemgr.metrics.service import AI_LATENCY_BUCKETS_MS, LIVE, count_if


class _DbCollector:
    def __init__(self, session: Session) -> None:
        self.session = session

    def collect(self) -> Iterator[Any]:
        s = self.session
        cases = s.execute(select(Case.case_type, func.count()).group_by(Case.case_type)).all()
        c = CounterMetricFamily("casemgr_cases_created", "Cases created", labels=["case_type"])
        for ct, n in cases:
            c.add_metric([ct], n)
        yield c
        hist = s.execute(select(StageHistory.case_type, func.count()).group_by(StageHistory.case_type)).all()
        created = dict(cases)
        t = CounterMetricFamily("casemgr_transitions", "Stage transitions", labels=["case_type"])
        for ct, n in hist:
            t.add_metric([ct], max(n - created.get(ct, 0), 0))
        yield t
        b = CounterMetricFamily("casemgr_sla_breaches", "SLA breaches detected by the worker")
        b.add_metric([], s.execute(select(func.count()).select_from(AuditEvent)
                                   .where(AuditEvent.action == "sla.breached")).scalar_one())
        yield b
        calls = CounterMetricFamily("casemgr_ai_calls", "AI calls", labels=["capability", "provider", "result"])
        lat = HistogramMetricFamily("casemgr_ai_call_latency_seconds", "AI call latency", labels=["capability"])
        rows = s.execute(
            select(AICall.capability, AICall.provider, func.count(), count_if(AICall.error.is_not(None)),
                   func.sum(AICall.latency_ms), *[count_if(AICall.latency_ms <= ms) for ms in AI_LATENCY_BUCKETS_MS])
            .group_by(AICall.capability, AICall.provider)
        ).all()
        per_cap: dict[str, list[float]] = {}
        for cap, prov, n, errors, total_ms, *les in rows:
            calls.add_metric([cap, prov, "ok"], n - (errors or 0))
            calls.add_metric([cap, prov, "error"], errors or 0)
            acc = per_cap.setdefault(cap, [0.0, 0.0] + [0.0] * len(AI_LATENCY_BUCKETS_MS))
            acc[0] += n
            acc[1] += float(total_ms or 0) / 1000.0
            for i, v in enumerate(les):
                acc[2 + i] += float(v or 0)
        for cap, acc in per_cap.items():
            buckets = [(str(ms / 1000), acc[2 + i]) for i, ms in enumerate(AI_LATENCY_BUCKETS_MS)]
            buckets.append(("+Inf", acc[0]))
            lat.add_metric([cap], buckets, acc[1])
        yield calls
        yield lat
        q = GaugeMetricFamily("casemgr_queue_depth", "Open cases per queue (worker snapshot)", labels=["queue"])
        age = GaugeMetricFamily("casemgr_metrics_snapshot_age_seconds", "Age of the dashboard snapshot")
        snap = s.get(MetricSnapshot, LIVE)
        if snap is not None:
            depth: dict[str, int] = {}
            for r in snap.data.get("backlog", []):
                depth[r["queue"]] = depth.get(r["queue"], 0) + r["n"]
            for name, n in sorted(depth.items()):
                q.add_metric([name], n)
            age.add_metric([], (now() - snap.computed_at).total_seconds())
        yield q
        yield age


def render_metrics(session: Session) -> tuple[bytes, str]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_DbCollector(session))  # type: ignore[arg-type]
    return generate_latest(registry), CONTENT_TYPE_LATEST
