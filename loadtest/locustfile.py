"""Mixed traffic for casemgr (issue 10): 70 % queue and case page reads, 20 % agent updates, 10 % intake.

Run headless through `casemgr bench load --seconds 60 --users 32 --json` (it seeds demo data, serves the app on
loopback, creates the API keys and runs this file), or by hand against any casemgr:

    CASEMGR_LOAD_AGENT_KEY=… CASEMGR_LOAD_INTAKE_KEY=… locust -f loadtest/locustfile.py --host http://127.0.0.1:8000

Agent updates PATCH a case with the version they read. Two users racing on one case is normal in a team:
the loser gets 409, which is counted as "409 expected conflict" (a success in locust's totals) so that the
error rate only counts real failures.
"""

from __future__ import annotations

import json
import os
import random
import time
import uuid

from locust import FastHttpUser, between, events, task

AGENT_KEY = os.environ.get("CASEMGR_LOAD_AGENT_KEY", "")
INTAKE_KEY = os.environ.get("CASEMGR_LOAD_INTAKE_KEY", "")
CASE_IDS = [int(x) for x in os.environ.get("CASEMGR_LOAD_CASE_IDS", "").split(",") if x]
WAIT_MAX_S = float(os.environ.get("CASEMGR_LOAD_WAIT_S", "0.05"))
CONFLICTS = {"n": 0}

BODIES = [
    "I was charged twice on my credit card and the refund never arrived.",
    "The debt collector calls me every day about a loan I already repaid.",
    "My mortgage payment was applied late and I was charged a fee of $45.",
    "We need a supply agreement with Acme Ltd for 24 months, auto-renewal, value 120,000 EUR.",
]


# Response times per minute of the run and request name (`casemgr bench soak` reports the worst minute: a target
# must hold throughout, not only on average).
WINDOWS: dict[tuple[int, str], list[float]] = {}
STARTED = {"t": 0.0}


@events.test_start.add_listener
def _start(environment, **_kw) -> None:  # type: ignore[no-untyped-def]
    STARTED["t"] = time.monotonic()


@events.request.add_listener
def _timed(request_type, name, response_time, response_length, exception=None, **_kw) -> None:  # type: ignore[no-untyped-def]
    if exception is None:
        WINDOWS.setdefault((int((time.monotonic() - STARTED["t"]) // 60), name), []).append(float(response_time))


def _pct(values: list[float], q: float) -> float:
    v = sorted(values)
    return round(v[min(len(v) - 1, max(0, int(round(q * (len(v) - 1)))))], 1)


@events.test_stop.add_listener
def _report(environment, **_kw) -> None:  # type: ignore[no-untyped-def]
    out = os.environ.get("CASEMGR_LOAD_RESULT")
    if out:
        minutes = [{"minute": m, "name": n, "n": len(v), "p50_ms": _pct(v, 0.5), "p95_ms": _pct(v, 0.95),
                    "p99_ms": _pct(v, 0.99)} for (m, n), v in sorted(WINDOWS.items())]
        with open(out, "w", encoding="utf-8") as fh:
            json.dump({"conflicts_409": CONFLICTS["n"], "minutes": minutes}, fh)


@events.init_command_line_parser.add_listener
def _args(parser) -> None:  # type: ignore[no-untyped-def]
    parser.add_argument("--case-ids", default="", help="Comma-separated case ids to read and update")


class Agent(FastHttpUser):
    wait_time = between(0, WAIT_MAX_S)

    def on_start(self) -> None:
        self.agent = {"X-API-Key": AGENT_KEY}
        self.intake = {"X-API-Key": INTAKE_KEY, "Content-Type": "application/json"}
        ids = CASE_IDS or [int(x) for x in (self.environment.parsed_options.case_ids or "").split(",") if x]
        if not ids:  # discover the cases through the API
            with self.client.get("/api/cases?limit=200&status=open", headers=self.agent, name="GET /api/cases",
                                 catch_response=True) as r:
                ids = [c["id"] for c in r.json()["items"]] if r.status_code == 200 else []
        self.case_ids = ids or [1]

    # 70 %: reads (queue page, case page, case JSON)
    @task(30)
    def queue_page(self) -> None:
        self.client.get("/queue", headers=self.agent, name="GET /queue")

    @task(25)
    def case_page(self) -> None:
        self.client.get(f"/cases/{random.choice(self.case_ids)}", headers=self.agent, name="GET /cases/{id}")

    @task(15)
    def case_json(self) -> None:
        self.client.get(f"/api/cases/{random.choice(self.case_ids)}", headers=self.agent, name="GET /api/cases/{id}")

    # 20 %: agent updates with optimistic locking
    @task(20)
    def update(self) -> None:
        case_id = random.choice(self.case_ids)
        r = self.client.get(f"/api/cases/{case_id}", headers=self.agent, name="GET /api/cases/{id} (before update)")
        if r.status_code != 200:
            return
        version = r.json()["version"]
        body = json.dumps({"version": version, "priority": random.choice(["low", "normal", "high"])})
        with self.client.request("PATCH", f"/api/cases/{case_id}", data=body, catch_response=True,
                                 headers={**self.agent, "Content-Type": "application/json"},
                                 name="PATCH /api/cases/{id}") as resp:
            if resp.status_code == 409:
                CONFLICTS["n"] += 1
                resp.success()  # an expected conflict: counted separately, not an error

    # 10 %: intake from another system
    @task(10)
    def intake(self) -> None:
        # Each text unique (a reference), as real mail is: no cache in the AI path may serve one case from another.
        ref = uuid.uuid4().hex[:8]
        body = json.dumps({"subject": f"Load test {ref}", "body": f"{random.choice(BODIES)} Reference {ref}.",
                           "sender": {"name": "Load Test", "email": "load@example.org"},
                           "external_id": uuid.uuid4().hex})
        self.client.post("/api/intake", data=body, headers=self.intake, name="POST /api/intake")
