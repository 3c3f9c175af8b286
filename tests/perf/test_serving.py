"""Serving: keep-alive latency with several uvicorn workers, and the bench plumbing (fast checks)."""

from __future__ import annotations

import json

import pytest

from casemgr.bench import loadgen, serving


@pytest.mark.slow
@pytest.mark.timing  # a median latency bound (20 ms): on a busy host it measures the host; alone at the end
def test_keepalive_latency_with_two_workers_is_not_40ms() -> None:
    # `uvicorn --workers N` on the plain asyncio loop adds ~40 ms per keep-alive request (Nagle + delayed ACK);
    # casemgr serve uses uvloop + httptools, which set TCP_NODELAY.
    port = serving.free_port()
    with serving.process(serving.serve_args(port, 2), {}, port=port):
        req = loadgen.build_request("GET", "/healthz", host=f"127.0.0.1:{port}")
        loadgen.run("127.0.0.1", port, lambda i: req, n=20, concurrency=1)
        res = loadgen.run("127.0.0.1", port, lambda i: req, n=200, concurrency=1).summary()
    assert res["ok"] == 200
    assert res["p50_ms"] < 20, res  # a 40 ms stall would show in the median


def test_loadgen_counts_statuses_and_reads_bodies() -> None:
    port = serving.free_port()
    with serving.process(serving.serve_args(port, 1), {}, port=port):
        host = f"127.0.0.1:{port}"
        paths = ["/healthz", "/api/cases", "/no-such-page"]
        res = loadgen.run("127.0.0.1", port, lambda i: loadgen.build_request("GET", paths[i % 3], host=host),
                          n=30, concurrency=4, keep_bodies=True)
    assert res.statuses == {200: 10, 401: 10, 404: 10}
    assert res.ok == 10 and res.summary()["errors"] == 20
    assert sum(1 for b in res.bodies if json.loads(b).get("status") == "ok") == 10


def test_the_load_generators_own_garbage_collector_is_off_while_it_measures() -> None:
    """A full collection in the bench process would time every request in flight late (issue 23: 74 ms)."""
    import gc

    port = serving.free_port()
    seen: list[bool] = []
    req = loadgen.build_request("GET", "/healthz", host=f"127.0.0.1:{port}")

    def make(i: int) -> bytes:
        seen.append(gc.isenabled())
        return req

    assert gc.isenabled()
    with serving.process(serving.serve_args(port, 1), {}, port=port):
        res = loadgen.run("127.0.0.1", port, make, n=20, concurrency=2)
    assert res.ok == 20 and seen == [False] * 20
    assert gc.isenabled()  # and back on afterwards


def test_bench_all_reports_missing_parts_without_failing(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    import typer

    from casemgr.bench import cli

    monkeypatch.setattr(cli, "PARTS", {"ghost": ("casemgr.no_such_bench", "ghost")})
    cli.bench_all(cases=10, intake_n=10, clients=1, only=[], as_json=True)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert lines[0] == {"part": "ghost", "status": "not available", "reason": "casemgr.no_such_bench is not installed"}
    assert lines[-1]["bench"] == "all" and lines[-1]["results"]["ghost"]["status"] == "not available"
    assert lines[-1]["env"]["cpus"] >= 1
    monkeypatch.setattr(cli, "PARTS", {"broken": ("casemgr.bench.cli", "no-such-command")})
    try:
        cli.bench_all(cases=10, intake_n=10, clients=1, only=[], as_json=True)
    except typer.Exit as exc:
        assert exc.exit_code == 1
    else:
        raise AssertionError("a failed part must fail `bench all`")
