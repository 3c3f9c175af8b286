"""Build hook: ship the default policies inside the package.

The repository keeps the editable policies in `policies/` (a source checkout reads them there). A wheel has no
repository next to it, so building copies `policies/` into `casemgr/bundled_policies/`, the default that
`casemgr.config` falls back to when `policies/` is not beside the package. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent


class BuildPyWithPolicies(build_py):
    def run(self) -> None:
        super().run()
        src = ROOT / "policies"
        if not (src / "org.yaml").is_file():
            raise SystemExit(f"cannot bundle the default policies: {src / 'org.yaml'} is missing")
        dst = Path(self.build_lib) / "casemgr" / "bundled_policies"
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".*"))


setup(cmdclass={"build_py": BuildPyWithPolicies})
