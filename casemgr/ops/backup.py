"""`casemgr backup PATH` / `casemgr restore PATH` for the configured database.

SQLite uses the online backup API (a consistent copy while the service keeps writing); PostgreSQL uses
pg_dump's custom format and pg_restore. Restore goes into the database named by CASEMGR_DATABASE_URL.
"""

from __future__ import annotations

import glob
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from casemgr.config import get_settings
from casemgr.db import dispose_engines
from casemgr.limits import AUDIT_TEXT_CHARS


class BackupError(Exception):
    pass


def _sqlite_path(url: str) -> Path:
    return Path(url.split("sqlite:///", 1)[1])


def _libpq_url(url: str) -> str:
    return "postgresql://" + url.split("://", 1)[1]


def _pg_tool(name: str) -> str:
    # Prefer the newest server version's tools so a dump of a newer server still works.
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    found = candidates[-1] if candidates else shutil.which(name)
    if not found:
        raise BackupError(f"{name} not found; install the PostgreSQL client tools")
    return found


def _run(cmd: list[str]) -> None:
    # The URL (and any password in it) goes in the environment, never on a command line others can read.
    env = dict(os.environ)
    result = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise BackupError(f"{Path(cmd[0]).name} failed: {result.stderr.strip()[:AUDIT_TEXT_CHARS]}")


def backup(path: Path) -> dict[str, object]:
    url = get_settings().effective_database_url
    path = path.resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    if url.startswith("sqlite"):
        src_path = _sqlite_path(url)
        if not src_path.exists():
            raise BackupError(f"no database at {src_path}")
        tmp = path.with_suffix(path.suffix + ".partial")
        tmp.unlink(missing_ok=True)
        os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))  # a copy of everything: owner only
        src = sqlite3.connect(src_path)
        dst = sqlite3.connect(tmp)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        os.replace(tmp, path)  # a half-written backup never carries the final name
        return {"engine": "sqlite", "path": str(path), "bytes": path.stat().st_size}
    tmp = path.with_suffix(path.suffix + ".partial")
    _run([_pg_tool("pg_dump"), "--format=custom", "--no-owner", "--no-privileges", f"--file={tmp}",
          f"--dbname={_libpq_url(url)}"])
    os.replace(tmp, path)
    return {"engine": "postgresql", "path": str(path), "bytes": path.stat().st_size}


def restore(path: Path) -> dict[str, object]:
    url = get_settings().effective_database_url
    path = path.resolve()
    if not path.is_file():
        raise BackupError(f"backup file not found: {path}")
    dispose_engines()
    if url.startswith("sqlite"):
        with open(path, "rb") as fh:
            if fh.read(16) != b"SQLite format 3\x00":
                raise BackupError(f"{path} is not a SQLite backup (this database is SQLite)")
        target = _sqlite_path(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        src = sqlite3.connect(path)
        dst = sqlite3.connect(target)
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        return {"engine": "sqlite", "restored_into": str(target)}
    with open(path, "rb") as fh:
        if fh.read(5) != b"PGDMP":
            raise BackupError(f"{path} is not a pg_dump custom-format backup (this database is PostgreSQL)")
    _run([_pg_tool("pg_restore"), "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction",
          f"--dbname={_libpq_url(url)}", str(path)])
    return {"engine": "postgresql", "restored_into": "database from CASEMGR_DATABASE_URL"}
