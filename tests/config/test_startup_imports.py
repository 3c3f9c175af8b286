"""The web app starts without the machine-learning stack: scikit-learn, pandas and scipy load only in the worker or
the CLI that needs a model. One module-level import of casemgr.ai.classifier (for a file-name constant) pulled them
into every app process: +80 MB RSS and +1 s start-up, and the memory benchmark went over its 300 MB limit."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_create_app_does_not_import_the_ml_stack(tmp_path: Path) -> None:
    code = ("import json, sys\nfrom casemgr.web.app import create_app\ncreate_app()\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'pandas', 'scipy'})))")
    env = {**os.environ, "CASEMGR_DATA_DIR": str(tmp_path), "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
