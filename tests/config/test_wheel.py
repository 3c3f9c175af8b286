"""An installed wheel works outside the source tree: the default policies ship inside the package.

The wheel is built from this checkout and installed without dependencies into a fresh venv that reuses the test
venv's packages through a plain .pth line (no reinstall of FastAPI, scikit-learn, ...). The commands then run
from an empty temp directory, so nothing can be read from the repository by accident.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

from casemgr.bench.serving import free_port

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.sqlite_only]


def _run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)  # type: ignore[call-overload]
    assert proc.returncode == 0, f"{cmd} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
    return proc



@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    # Build from a copy: an in-tree build leaves build/ and *.egg-info behind (and pip would take that egg-info
    # for an installed casemgr).
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "setup.py", "MANIFEST.in", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for name in ("casemgr", "policies"):
        shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"))
    clean = _env(tmp / "unused")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"),
          str(src)], env=clean)
    wheel = next((tmp / "dist").glob("casemgr-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
    assert "casemgr/bundled_policies/org.yaml" in names
    assert "casemgr/bundled_policies/rules/complaints.yaml" in names
    assert "casemgr/migrations/alembic.ini" in names

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    py = venv / "bin" / "python"
    site = _run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    _run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", "--no-index", str(wheel)],
         env=clean)
    # Then (not before: pip would see the test venv's casemgr as installed) a plain path line: the test venv's
    # packages are importable, but its .pth files (among them the editable casemgr finder) are not run, so
    # `import casemgr` finds the installed wheel.
    Path(site, "_test_venv_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CASEMGR_") and k != "PYTHONPATH"}
    env["CASEMGR_DATA_DIR"] = str(data_dir)
    return env


def test_installed_wheel_upgrades_seeds_and_serves_outside_the_source_tree(wheel_venv: Path, tmp_path: Path) -> None:
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    env = _env(tmp_path / "data")
    py, casemgr = str(wheel_venv / "bin" / "python"), str(wheel_venv / "bin" / "casemgr")

    where = _run([py, "-c", "import casemgr, casemgr.config as c; print(casemgr.__file__); "
                  "print(c.get_settings().policies_dir)"], cwd=workdir, env=env).stdout.split()
    assert where[0].startswith(str(wheel_venv)), where
    assert where[1].startswith(str(wheel_venv)) and where[1].endswith("bundled_policies"), where

    assert "database is up to date" in _run([casemgr, "db", "upgrade"], cwd=workdir, env=env).stdout
    assert "cases created:" in _run([casemgr, "demo"], cwd=workdir, env=env).stdout

    port = free_port()
    serve = subprocess.Popen([casemgr, "serve", "--port", str(port), "--no-worker"], cwd=workdir, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline, status = time.monotonic() + 60, None
        while time.monotonic() < deadline and serve.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as resp:
                    status = resp.status
                    break
            except OSError:
                time.sleep(0.3)
        assert status == 200, f"serve did not answer /healthz (exit {serve.poll()})"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=5) as resp:
            assert resp.status == 200 and b"<form" in resp.read()
    finally:
        serve.terminate()
        _, err = serve.communicate(timeout=30)
    assert "Traceback" not in err, err


def test_installed_wheel_still_honours_casemgr_policies_dir(wheel_venv: Path, tmp_path: Path) -> None:
    env = _env(tmp_path / "data")
    env["CASEMGR_POLICIES_DIR"] = str(ROOT / "policies")
    out = _run([str(wheel_venv / "bin" / "python"), "-c",
                "import casemgr.config as c; print(c.get_settings().policies_dir)"], cwd=tmp_path, env=env).stdout
    assert out.strip() == str(ROOT / "policies")
