"""`casemgr bench …`: every benchmark command, registered in COMMANDS at the bottom (one list).

Every sub-benchmark prints a human-readable table with the environment on stderr and one JSON line on stdout.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import typer

from casemgr.bench.env import environment, print_table


def _upgrade() -> None:
    from casemgr import migrate

    migrate.upgrade()


def _emit(res: dict[str, Any], title: str, rows: list[tuple[str, Any]], as_json: bool) -> None:
    print_table(title, rows, res.get("env"))
    # --json: everything (per-endpoint figures, RSS samples, environment); otherwise the headline figures.
    line = res if as_json else {k: v for k, v in res.items() if k not in ("env", "samples", "by_name")}
    typer.echo(json.dumps(line))


def bench_load(
    database_url: str | None = typer.Option(None, "--database-url", help="A scratch PostgreSQL database (default: temp SQLite)."),
    seconds: int = typer.Option(60, help="Duration of the run."),
    users: int = typer.Option(32, help="Concurrent locust users."),
    workers: int = typer.Option(1, help="`casemgr serve --workers`."),
    as_json: bool = typer.Option(False, "--json", help="Full JSON line (with per-endpoint figures)."),
) -> None:
    """Mixed traffic (70% reads, 20% agent updates, 10% intake) with locust, headless on loopback."""
    from casemgr.bench import load

    res = load.run(seconds=seconds, users=users, workers=workers, database_url=database_url)
    _emit(res, "casemgr bench load (locust, mixed traffic)", load.table_rows(res), as_json)


def bench_memory(
    database_url: str | None = typer.Option(None, "--database-url", help="A scratch PostgreSQL database (default: temp SQLite)."),
    requests: int = typer.Option(1_000_000, help="Requests to send to one app worker."),
    clients: int = typer.Option(16, help="Concurrent keep-alive connections."),
    as_json: bool = typer.Option(False, "--json", help="Full JSON line (with every RSS sample)."),
) -> None:
    """App worker RSS after many mixed requests (limit 300 MB, no growth trend); exit 1 if over."""
    from casemgr.bench import memory

    res = memory.run(requests=requests, clients=clients, database_url=database_url)
    _emit(res, "casemgr bench memory (one app worker)", memory.table_rows(res), as_json)
    if not res["ok"]:
        raise typer.Exit(1)


def bench_intake_http(
    database_url: str | None = typer.Option(None, "--database-url", help="A scratch PostgreSQL database (default: temp SQLite)."),
    n: int = typer.Option(2000, "--n", help="Measured requests per server (floor and intake)."),
    clients: int = typer.Option(32, help="Concurrent keep-alive clients."),
    workers: int = typer.Option(1, help="uvicorn workers, the same for the floor and `casemgr serve`."),
    drain: int = typer.Option(300, help="Minimum AI backlog for the worker drain measurement (0: skip)."),
    as_json: bool = typer.Option(False, "--json", help="Full JSON line first, then the contract line."),
) -> None:
    """POST /api/intake end to end on `casemgr serve` vs a bare FastAPI insert floor, same run, same settings."""
    from casemgr.bench import intake_http

    res = intake_http.run(n=n, clients=clients, workers=workers, drain=drain, database_url=database_url)
    print_table("casemgr bench intake-http (API, end to end vs bare insert floor)", intake_http.table_rows(res),
                res["env"])
    if as_json:
        typer.echo(json.dumps({k: v for k, v in res.items() if k != "env"}))
    typer.echo(json.dumps(intake_http.summary_line(res)))


def bench_rules(
    as_json: bool = typer.Option(False, "--json", help="One JSON line."),
    soak: bool = typer.Option(False, "--soak", help="Run the 200,000-evaluation hot-reload soak instead."),
    evals: int = typer.Option(200_000, help="Soak: evaluations."),
    reloads: int = typer.Option(20, help="Soak: hot reloads."),
    threads: int = typer.Option(4, help="Soak: evaluating threads."),
    n: int = typer.Option(50_000, "--n", help="Bench: routing evaluations per run (chaining: n/2)."),
) -> None:
    """Rules throughput (routing, forward chaining, plain-Python baseline), or the soak test."""
    from casemgr.bench.rules import run_rules_bench, run_soak

    if soak:
        res = run_soak(evals=evals, reloads=reloads, threads=threads)
        ok = bool(res["ok"]) and res["rss_growth_mb"] < 50
        typer.echo(json.dumps(res) if as_json else "\n".join(f"{k}: {v}" for k, v in res.items()))
        if not ok:
            raise typer.Exit(1)
        return
    res = run_rules_bench(n_routing=n, n_chaining=max(1, n // 2))
    if as_json:
        typer.echo(json.dumps(res))
    else:
        for k, v in res.items():
            typer.echo(f"{k}: {v}")


def bench_ai(
    data: Path | None = typer.Option(None, help="complaints.csv (default ../shared/data/cfpb-complaints/)."),
    n: int = typer.Option(2000),
    batch: int = typer.Option(64),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Classification throughput on one core, batched, vs a TF-IDF+LR baseline."""
    from casemgr.bench.ai import run_ai_bench

    res = run_ai_bench(data, n=n, batch=batch)
    if as_json:
        typer.echo(json.dumps(res, ensure_ascii=False))
    else:
        for k, v in res.items():
            typer.echo(f"{k}: {json.dumps(v, ensure_ascii=False) if isinstance(v, dict | list) else v}")


def bench_intake(
    n: int = typer.Option(2000, help="Messages per measured path (short runs are noisy: the API path takes ~2 s)."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
    clients: int = typer.Option(32, help="API path: concurrent keep-alive clients."),
    workers: int = typer.Option(1, help="API path: uvicorn workers (floor and casemgr serve alike)."),
) -> None:
    """Messages per second through SMTP and the API, each against a bare store-only floor."""
    from casemgr.bench.intake import run_intake_bench

    _upgrade()
    env = environment()
    result = run_intake_bench(n=n, clients=clients, workers=workers)
    print_table("casemgr bench intake", [(f"{x['path']} {k}", v) for x in result["lines"] for k, v in x.items()
                                         if k not in ("path", "statuses", "rounds")], env)
    for line in result["lines"]:
        typer.echo(json.dumps(line) if json_out else "  ".join(f"{k}={v}" for k, v in line.items()))
    typer.echo(json.dumps(result["summary"]))


def bench_dashboard(
    cases: int = typer.Option(1_000_000, "--cases", min=1, help="Cases to generate."),
    json_out: bool = typer.Option(False, "--json", help="One JSON line only."),
    database_url: str | None = typer.Option(None, "--database-url",
                                            help="An EMPTY PostgreSQL database to fill (default: a temp SQLite)."),
) -> None:
    """Dashboard and queue page server time at N generated cases (target: queue p95 <= 25 ms, dashboard <= 500 ms)."""
    from casemgr.bench.dashboard import run_dashboard_bench

    result = run_dashboard_bench(cases, database_url)
    if json_out:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"dashboard bench: {cases} cases on {result['database']} ({result['cpus']} CPUs)")
    for k, v in result.items():
        typer.echo(f"  {k:<20} {v}")


def bench_pages(
    cases: int = typer.Option(100_000, "--cases", min=1, help="Cases to generate."),
    json_out: bool = typer.Option(False, "--json", help="One JSON line only."),
    database_url: str | None = typer.Option(None, "--database-url",
                                            help="An EMPTY PostgreSQL database to fill (default: a temp SQLite)."),
    data_dir: str | None = typer.Option(None, "--data-dir",
                                        help="Reuse this SQLite data dir holding --cases generated cases (changed)."),
) -> None:
    """Queue and case page server time with the workspace features at N cases (target: p95 <= 150 ms each)."""
    from casemgr.bench.pages import run_pages_bench

    result = run_pages_bench(cases, database_url, data_dir)
    if json_out:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"pages bench: {cases} cases on {result['database']} ({result['cpus']} CPUs)")
    for k, v in result.items():
        typer.echo(f"  {k:<20} {v}")


# `bench all`: each part runs in its own process (isolated engines, memory and global state) and a part that
# fails or is not installed is reported as such instead of stopping the rest.
def _part(argv: list[str], timeout_s: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, "-m", "casemgr.cli", "bench", *argv], capture_output=True, text=True,
                              timeout=timeout_s, env=os.environ.copy())
    except subprocess.TimeoutExpired:
        return {"status": "failed", "reason": f"timed out after {timeout_s:.0f} s"}
    sys.stderr.write(proc.stderr)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip().startswith("{")]
    if proc.returncode != 0 or not lines:
        return {"status": "failed", "reason": f"exit {proc.returncode}: {proc.stderr.strip()[-500:]}"}
    out: dict[str, Any] = {}
    try:
        for ln in lines:  # detail lines first, the contract line last: merged, the contract wins
            out.update({k: v for k, v in json.loads(ln).items() if k not in ("env", "statuses")})
    except json.JSONDecodeError as exc:
        return {"status": "failed", "reason": f"bad JSON line: {exc}"}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


PARTS: dict[str, tuple[str, str]] = {
    # name: (module that must exist, CLI command)
    "rules": ("casemgr.bench.rules", "rules"),
    "ai": ("casemgr.bench.ai", "ai"),
    "intake": ("casemgr.bench.intake_http", "intake-http"),
    "dashboard": ("casemgr.bench.dashboard", "dashboard"),
}


def bench_all(
    cases: int = typer.Option(20_000, help="Dashboard: cases loaded (the 1M run: `bench dashboard --cases 1000000`)."),
    intake_n: int = typer.Option(2000, "--intake-n", help="Intake: measured requests per server."),
    clients: int = typer.Option(32, help="Intake: concurrent clients."),
    only: list[str] = typer.Option([], "--only", help="Run only these parts (repeatable)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line per part, then the whole report."),
) -> None:
    """rules, ai, intake and dashboard in one report."""
    argv = {
        "rules": ["rules", "--json"],
        "ai": ["ai", "--json"],
        "intake": ["intake-http", "--n", str(intake_n), "--clients", str(clients), "--json"],
        "dashboard": ["dashboard", "--cases", str(cases), "--json"],
    }
    report: dict[str, Any] = {}
    for name, (module, cmd) in PARTS.items():
        if only and name not in only:
            continue
        if importlib.util.find_spec(module) is None:
            report[name] = {"status": "not available", "reason": f"{module} is not installed"}
        else:
            report[name] = _part(argv.get(name, [cmd, "--json"]), timeout_s=3600)
        if as_json:
            typer.echo(json.dumps({"part": name, **report[name]}))
    env = environment()
    print_table("casemgr bench all", [(k, _brief(v)) for k, v in report.items()], env)
    typer.echo(json.dumps({"bench": "all", "results": report, "env": env}))
    if any(v.get("status") == "failed" for v in report.values()):
        raise typer.Exit(1)


def _brief(res: dict[str, Any]) -> str:
    if "status" in res:
        return f"{res['status']}: {res.get('reason', '')}"[:120]
    keys = [k for k in res if k.endswith(("_per_s", "ratio", "_ms", "docs_per_s")) and not isinstance(res[k], dict)]
    return ", ".join(f"{k}={res[k]}" for k in keys[:6])


def bench_pipe(
    database_url: str | None = typer.Option(None, "--database-url", help="A scratch PostgreSQL database (default: temp SQLite)."),
    runs: int = typer.Option(20, "--runs", min=1, help="Deliveries to time (one process each)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line only."),
) -> None:
    """`casemgr intake pipe` start-up per message (wall and CPU) vs a bare Python start, same run (target < 300 ms)."""
    from casemgr.bench import pipe

    res = pipe.run(n=runs, database_url=database_url)
    if as_json:
        typer.echo(json.dumps(res))
        return
    for k, v in res.items():
        typer.echo(f"  {k:<28} {v}")


def bench_soak(
    database_url: str | None = typer.Option(None, "--database-url", help="A scratch PostgreSQL database (default: temp SQLite)."),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Reuse this SQLite data dir and its cases (changed)."),
    cases: int = typer.Option(1_000_000, help="Cases generated into an empty database first."),
    minutes: float = typer.Option(10.0, help="Duration of the traffic."),
    users: int = typer.Option(16, help="Concurrent locust users (agents and intake)."),
    workers: int = typer.Option(1, help="`casemgr serve --workers`."),
    job_workers: int = typer.Option(1, "--job-workers", help="`casemgr worker` processes."),
    as_json: bool = typer.Option(False, "--json", help="Full JSON line (per-minute and per-endpoint figures)."),
) -> None:
    """Mixed agent traffic + intake at N cases while scans and refreshes run: intake p99, queue p95 per minute."""
    from casemgr.bench import soak

    res = soak.run(cases, minutes, users=users, workers=workers, job_workers=job_workers,
                   database_url=database_url, data_dir=data_dir)
    _emit(res, "casemgr bench soak (mixed traffic while the worker scans and refreshes)", soak.table_rows(res), as_json)


def bench_jobs(
    database_url: str | None = typer.Option(None, "--database-url", help="A scratch PostgreSQL database (default: temp SQLite)."),
    data_dir: str | None = typer.Option(None, "--data-dir", help="Reuse this SQLite data dir and its cases (changed)."),
    cases: int = typer.Option(100_000, help="Cases generated into an empty database first."),
    changes: int = typer.Option(1000, help="Stage moves made before the second metrics refresh."),
    full: bool = typer.Option(False, "--full", help="Also run the explicit full rollup rebuild."),
    catch_up_chunks: int | None = typer.Option(None, "--catch-up-chunks", min=1,
                                               help="Fresh load: time K catch-up chunks, mark the rest counted."),
    as_json: bool = typer.Option(False, "--json", help="Full JSON line."),
) -> None:
    """Each background job once at N cases: its longest and p95 write transaction (bound 50 ms)."""
    from casemgr.bench import jobs

    res = jobs.run(cases, changes=changes, full=full, database_url=database_url, data_dir=data_dir,
                   catch_up_chunks=catch_up_chunks)
    _emit(res, "casemgr bench jobs (write-transaction length per background job)", jobs.table_rows(res), as_json)


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected numbers separated by commas, got {text!r}") from None
    if not values or min(values) < 1:
        raise typer.BadParameter(f"expected numbers >= 1, got {text!r}")
    return values


def bench_scaleout(
    apps: str = typer.Option("1,2,4", "--apps", help="App process counts to run, comma-separated."),
    workers: str = typer.Option("1,2", "--workers", help="Worker process counts to run, comma-separated."),
    n: int = typer.Option(2000, "--n", min=1, help="Measured intake requests per combination."),
    clients: int = typer.Option(32, "--clients", min=1, help="Concurrent keep-alive connections."),
    database_url: str | None = typer.Option(None, "--database-url",
                                            help="The PostgreSQL database (default: CASEMGR_DATABASE_URL)."),
    as_json: bool = typer.Option(False, "--json", help="One JSON line only."),
) -> None:
    """N `casemgr serve` behind a round-robin loopback balancer + M workers on one PostgreSQL: intake rate,
    AI drain rate, p99, and every accepted request stored once, per combination."""
    from casemgr.bench import scaleout

    url = database_url or os.environ.get("CASEMGR_DATABASE_URL")
    if not url or not url.startswith("postgresql"):
        typer.echo("bench scaleout needs PostgreSQL: pass --database-url postgresql://... (a scratch database)",
                   err=True)
        raise typer.Exit(2)
    res = scaleout.run(_int_list(apps), _int_list(workers), n=n, clients=clients, database_url=url)
    if as_json:
        typer.echo(json.dumps(res))
        return
    print_table("casemgr bench scaleout", [(f"apps={x['apps']} workers={x['workers']}",
                                            f"{x['intake_per_s']}/s p99 {x['p99_ms']} ms, AI {x['ai_drain_per_s']}/s, "
                                            f"stored once: {x['stored_once']}") for x in res["lines"]], res["env"])
    typer.echo(json.dumps({k: v for k, v in res.items() if k != "env"}))


# Every `casemgr bench NAME` command, in one place.
def bench_review(
    decisions: int = typer.Option(10_000, "--decisions", min=1, help="Open AI decisions to generate."),
    requests: int = typer.Option(140, "--requests", min=7, help="Queue and page requests to time."),
    json_out: bool = typer.Option(False, "--json", help="One JSON line only."),
) -> None:
    """Review queue (JSON, filters, keyset page) and /review server time at N open decisions (target p95 <= 300 ms)."""
    from casemgr.bench.review import run_review_bench

    result = run_review_bench(decisions, requests)
    if json_out:
        typer.echo(json.dumps(result))
        return
    for k, v in result.items():
        typer.echo(f"  {k:<22} {v}")


COMMANDS: dict[str, Any] = {
    "all": bench_all,
    "rules": bench_rules,
    "ai": bench_ai,
    "intake": bench_intake,
    "intake-http": bench_intake_http,
    "dashboard": bench_dashboard,
    "pages": bench_pages,
    "load": bench_load,
    "memory": bench_memory,
    "review": bench_review,
    "pipe": bench_pipe,
    "soak": bench_soak,
    "jobs": bench_jobs,
    "scaleout": bench_scaleout,
}

app = typer.Typer(help="Benchmarks and soak tests.", no_args_is_help=True)
for _name, _command in COMMANDS.items():
    app.command(_name)(_command)
