"""Versioned model artefacts: a joblib file named by its content hash, with a JSON metadata file beside it."""

from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path
from typing import Any

import joblib


def write(payload: dict[str, Any], out: str | Path, prefix: str, meta: dict[str, Any]) -> tuple[Path, Path, str]:
    """Write `payload` (its "meta" without the version) and the metadata; returns (path, meta_path, version).

    `out` may be a directory (file named <prefix><version>.joblib inside) or a .joblib path.
    """
    buf = io.BytesIO()
    joblib.dump(payload, buf, compress=("xz", 6))
    blob = buf.getvalue()
    digest = hashlib.sha256(blob).hexdigest()
    version = digest[:12]
    out = Path(out)
    path = out / f"{prefix}{version}.joblib" if out.suffix != ".joblib" else out
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(blob)
    full = dict(meta, version=version, artifact=path.name, artifact_sha256=digest, bytes=len(blob))
    meta_path = path.with_suffix(".json")
    meta_path.write_text(json.dumps(full, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path, meta_path, version


def read(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Returns (payload, metadata); metadata from the JSON beside it, else from the payload."""
    path = Path(path)
    payload = joblib.load(path)
    meta_path = path.with_suffix(".json")
    meta = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else dict(payload["meta"])
    meta.setdefault("version", hashlib.sha256(path.read_bytes()).hexdigest()[:12])
    return payload, meta
