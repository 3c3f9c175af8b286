"""Rule regexes that could hang the engine are refused at the door, and the server keeps answering (issue 18).

A `matches` pattern with nested quantifiers froze the whole server when sent to the rules validate or simulate
endpoints (durable-rules compiles it in C holding the GIL). Acceptance: every such pattern gets a 422 naming
file:line within 1 s while /healthz keeps answering, on a real server process. Untrusted rule sets are also
compiled in a child process that is killed after a time limit.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from casemgr.rules.regex_gate import problem, scan_text
from security.live import live_server

ROOT = Path(__file__).resolve().parents[2]
FILES = {p.name: p.read_text() for p in sorted((ROOT / "policies" / "rules").glob("*.yaml"))}
SAFE = 'channel: {matches: "email|form|api"}'
LINE = next(i for i, t in enumerate(FILES["common.yaml"].splitlines(), 1) if SAFE in t)
NESTED = ["((a*)*)*", "(a+)+b", "(x+y*)+z", "(.*)*", "(a|b+)*c", "([a-z]+)*@", "((ab)+c?)+"]
NOT_LINEAR = ["(a)\\1", "x(?=y)"]


def _with(pattern: str) -> dict[str, str]:
    quoted = "'" + pattern.replace("'", "''") + "'"
    return dict(FILES, **{"common.yaml": FILES["common.yaml"].replace(SAFE, f"channel: {{matches: {quoted}}}")})


@pytest.mark.parametrize("pattern", NESTED + NOT_LINEAR)
def test_gate_refuses(pattern: str) -> None:
    assert problem(pattern)
    [p] = scan_text(_with(pattern)["common.yaml"], "common.yaml")
    assert (p.file, p.line) == ("common.yaml", LINE)


@pytest.mark.parametrize("pattern", ["email|form|api", "(foo|bar)+", "colou?r", "[a-z]+ [0-9]*", "(ab?)*"])
def test_gate_accepts_plain_patterns(pattern: str) -> None:
    assert problem(pattern) is None


def test_gate_reads_flow_block_and_aliased_yaml_without_expanding_it() -> None:
    text = ("a: &x [1, 2]\nb: [*x, *x, *x]\nrules:\n  - when:\n      stage:\n        matches: '(a+)+'\n"
            "      any: [{category: {imatches: '(b*)*'}}]\n")
    assert [p.line for p in scan_text(text, "f.yaml")] == [6, 7]


@pytest.mark.sqlite_only  # one server process per test; PostgreSQL changes nothing here
@pytest.mark.slow
@pytest.mark.timing  # "within 1 s" on a busy 2-core host failed (51 s wall at load 15): alone at the end
def test_hostile_patterns_get_422_with_file_line_within_1s_and_the_server_keeps_answering(api_key) -> None:  # type: ignore[no-untyped-def]
    key = api_key("governance")
    with live_server() as base, httpx.Client(base_url=base, timeout=10, headers={"X-API-Key": key}) as c:
        def send(args: tuple[str, str]) -> tuple[str, str, int, dict, float]:  # type: ignore[type-arg]
            endpoint, pattern = args
            t0 = time.monotonic()
            r = c.post(f"/api/rules/{endpoint}", json={"files": _with(pattern)})
            return endpoint, pattern, r.status_code, r.json(), time.monotonic() - t0

        # Warm-up: the key's first check (argon2) and first-use imports are not what this test measures.
        assert c.post("/api/rules/validate", json={"files": _with("email|form|api")}).json()["ok"] is True
        jobs = [(e, p) for p in NESTED + NOT_LINEAR for e in ("validate", "simulate")]
        with ThreadPoolExecutor(4) as pool:
            futures = [pool.submit(send, j) for j in jobs]
            while not all(f.done() for f in futures):
                t0 = time.monotonic()
                assert c.get("/healthz", timeout=2).status_code == 200
                assert time.monotonic() - t0 < 1.0
                time.sleep(0.05)
            results = [f.result() for f in futures]
        print("slowest 422:", max(r[4] for r in results))
        for endpoint, pattern, status, body, took in results:
            assert status == 422, (endpoint, pattern, body)
            assert took < 1.0, (endpoint, pattern, took)
            p = body["problems"][0]
            assert (p["file"], p["line"]) == ("common.yaml", LINE) and "regex" in p["message"], body


def test_untrusted_rules_run_in_a_child_that_is_killed_at_the_time_limit() -> None:
    from casemgr.rules import sandbox

    # The child would sleep 60 s: returning before that means it was given up at the limit (1 s), whatever the
    # machine's load (the bound was 10 s, a wall-time figure for a busy host's fork and start-up).
    t0 = time.monotonic()
    with pytest.raises(sandbox.SandboxTimeout):
        sandbox.run("sleep", 60.0, timeout_s=1.0)
    assert time.monotonic() - t0 < 60
    assert sandbox.run("validate", FILES, timeout_s=60.0) == ("ok", None)


def test_validate_endpoint_answers_422_when_the_sandbox_time_limit_passes(app, api_key, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from casemgr.runtime import rebuild

    monkeypatch.setenv("CASEMGR_RULES_SANDBOX_TIMEOUT_S", "0.001")
    rebuild()
    with TestClient(app, headers={"X-API-Key": api_key("governance")}) as c:
        r = c.post("/api/rules/validate", json={"files": FILES})
    assert r.status_code == 422 and "took longer than" in r.json()["detail"]


def test_a_flood_of_rule_sets_waits_for_a_child_slot_then_gets_503() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from casemgr.errors import ServiceUnavailable
    from casemgr.rules import sandbox

    with ThreadPoolExecutor(sandbox.MAX_CHILDREN) as pool:
        busy = [pool.submit(sandbox.run, "sleep", 3.0, timeout_s=10.0) for _ in range(sandbox.MAX_CHILDREN)]
        time.sleep(0.5)
        with pytest.raises(ServiceUnavailable):
            sandbox.run("sleep", 0.0, timeout_s=0.5)
        assert [f.result() for f in busy] == [("ok", None)] * sandbox.MAX_CHILDREN
    assert sandbox.run("sleep", 0.0, timeout_s=10.0) == ("ok", None)
