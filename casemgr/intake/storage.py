"""Content-addressed attachment files under data_dir/attachments: written once, never executed or served inline.

Files are named by their sha256 (no extension, no customer-supplied name), so a hostile file name cannot pick a
path and two deliveries of the same attachment share one file. A file is written and fsynced before the database
row that names it commits; a rolled-back transaction at worst leaves an unreferenced file, never a dangling row.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

from casemgr.config import get_settings


def attachments_root() -> Path:
    return get_settings().resolved_data_dir / "attachments"


def relative_path(sha256: str) -> str:
    return f"attachments/{sha256[:2]}/{sha256[2:4]}/{sha256}"


def store_blob(data: bytes) -> tuple[str, str]:
    """Write `data` durably; returns (sha256, path relative to the data dir)."""
    digest = hashlib.sha256(data).hexdigest()
    rel = relative_path(digest)
    target = get_settings().resolved_data_dir / rel
    if target.exists() and target.stat().st_size == len(data):
        return digest, rel
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest, rel


def read_blob(rel: str) -> bytes:
    root = get_settings().resolved_data_dir
    path = (root / rel).resolve()
    if not path.is_relative_to(attachments_root().resolve()):
        raise ValueError("attachment path outside the attachment store")
    return path.read_bytes()
