"""The environment a figure was measured in, and a plain table for humans (stderr; stdout stays JSON)."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

PACKAGES = ("casemgr", "fastapi", "starlette", "uvicorn", "uvloop", "httptools", "sqlalchemy", "sqlmodel",
            "psycopg", "scikit-learn", "durable-rules", "locust")


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def database_label(url: str) -> str:
    if url.startswith("sqlite"):
        import sqlite3

        return f"sqlite {sqlite3.sqlite_version}"
    try:
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.connect() as conn:
            version = conn.execute(text("SHOW server_version")).scalar()
        engine.dispose()
        return f"postgresql {version}"
    except Exception:  # noqa: BLE001 - the label is informative only
        return "postgresql"


def environment(database_url: str | None = None) -> dict[str, Any]:
    from casemgr.config import get_settings

    url = database_url or get_settings().effective_database_url
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        affinity = os.cpu_count() or 1
    return {
        "cpus": os.cpu_count(),
        "cpus_usable": affinity,
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "database": database_label(url),
        "versions": {p: v for p in PACKAGES if (v := _version(p))},
    }


def table(title: str, rows: list[tuple[str, Any]], env: dict[str, Any] | None = None) -> str:
    """A two-column table; the environment goes under it so every printed figure says where it came from."""
    lines = [title, "-" * max(len(title), 20)]
    width = max((len(k) for k, _ in rows), default=10)
    for key, value in rows:
        lines.append(f"  {key:<{width}}  {value}")
    if env:
        lines.append(f"  env: {env['cpus']} CPUs ({env['cpus_usable']} usable), python {env['python']}, "
                     f"{env['database']}")
        lines.append("       " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()))
    return "\n".join(lines)


def print_table(title: str, rows: list[tuple[str, Any]], env: dict[str, Any] | None = None) -> None:
    print(table(title, rows, env), file=sys.stderr, flush=True)
