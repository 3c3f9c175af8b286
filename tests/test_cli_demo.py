"""`casemgr demo` seeds a realistic backlog; the served app answers /healthz and lists the cases."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from typer.testing import CliRunner

from casemgr.cases.models import Case
from casemgr.casetypes.registry import get_registry
from casemgr.cli import app as cli
from casemgr.db import read_session


def test_demo_seeds_both_types_every_stage_over_90_days(client) -> None:
    result = CliRunner().invoke(cli, ["demo"])
    assert result.exit_code == 0, result.output
    for role in ("agent", "lead", "governance", "reviewer", "admin"):
        assert f"user {role}" in result.output
    with read_session() as s:
        rows = s.execute(select(Case.case_type, Case.stage, Case.created_at)).all()
    assert len(rows) >= 300
    stages = Counter((t, st) for t, st, _ in rows)
    reg = get_registry()
    for ct in ("complaint", "contract"):
        for st in reg.get(ct).stage_names:
            assert stages[(ct, st)] > 0, f"no demo case in {ct}/{st}"
    for ct in ("onboarding", "invoice"):  # the processes shipped as data (issue 22)
        assert sum(n for (t, _), n in stages.items() if t == ct) >= 10, ct
        assert len({st for (t, st) in stages if t == ct}) >= 3, ct
    created = sorted(r[2] for r in rows)
    assert (created[-1] - created[0]).days >= 80
    assert client.get("/healthz").status_code == 200
    again = CliRunner().invoke(cli, ["demo"])
    assert again.exit_code == 0 and "cases created: 0" in again.output
    assert "api key (agent) cm_" in result.output
    key = result.output.split("api key (agent) ")[1].split()[0]
    page = client.get("/api/cases", params={"limit": 200}, headers={"X-API-Key": key}).json()
    assert len(page["items"]) == 200 and page["next_cursor"]
    verify = CliRunner().invoke(cli, ["audit", "verify"])
    assert verify.exit_code == 0, verify.output


def test_python_dash_m_casemgr_is_the_casemgr_command(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A host without the console script on PATH runs `python -m casemgr`: same commands, same exit codes."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "CASEMGR_DATA_DIR": str(tmp_path)}
    ok = subprocess.run([sys.executable, "-m", "casemgr", "--help"], capture_output=True, text=True, env=env,
                        timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "serve" in ok.stdout and "worker" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "casemgr", "no-such-command"], capture_output=True, text=True,
                         env=env, timeout=120)
    assert bad.returncode == 2
