"""Candidate category models in the data dir (never in the package): <data_dir>/models/category/.

Each candidate is a versioned artefact written by casemgr.ai.artifact (complaints-<version>.joblib, the version
being the content hash, with its metadata in complaints-<version>.json) plus its comparison report
(complaints-<version>.report.json). Refused candidates are kept too: the report says why they were refused.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from casemgr.ai.targets import TARGETS, TargetName
from casemgr.errors import NotFound, ValidationFailed

# The category model's file prefix, from the light target registry: importing casemgr.ai.classifier here pulled
# scikit-learn and pandas into every app start-up (+80 MB RSS, +1 s) through the governance pages.
ARTIFACT_PREFIX = TARGETS[TargetName.category].prefix

VERSION_RE = re.compile(r"^[0-9a-f]{12}$")
REPORT_SUFFIX = ".report.json"


def models_dir() -> Path:
    from casemgr.config import get_settings

    return get_settings().resolved_data_dir / "models" / "category"


def artifact_path(version: str) -> Path:
    if not VERSION_RE.match(version or ""):
        raise ValidationFailed(f"not a model version: {version!r} (12 hex digits)", field="version")
    return models_dir() / f"{ARTIFACT_PREFIX}{version}.joblib"


def report_path(version: str) -> Path:
    return artifact_path(version).with_suffix(REPORT_SUFFIX)


def write_report(version: str, report: dict[str, Any]) -> Path:
    path = report_path(version)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False) + "\n", encoding="utf-8")
    tmp.replace(path)  # a reader never sees half a report
    return path


def read_report(version: str) -> dict[str, Any]:
    path = report_path(version)
    try:
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise NotFound(f"no candidate model {version}") from None


def reports(limit: int = 50) -> list[dict[str, Any]]:
    """Candidate reports, newest first."""
    folder = models_dir()
    if not folder.is_dir():
        return []
    out = []
    for path in folder.glob(f"{ARTIFACT_PREFIX}*{REPORT_SUFFIX}"):
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue  # a damaged report is not offered
    out.sort(key=lambda r: (str(r.get("trained_at") or ""), str(r.get("version") or "")), reverse=True)
    return out[:limit]
