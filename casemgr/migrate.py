"""`casemgr db upgrade`: apply every alembic migration head to the configured database."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config

from casemgr.config import get_settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def alembic_config(url: str | None = None) -> Config:
    cfg = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["url"] = url or get_settings().effective_database_url
    return cfg


def upgrade(url: str | None = None) -> None:
    target = url or get_settings().effective_database_url
    if target.startswith("sqlite"):
        from casemgr.db import create_private_file

        get_settings().resolved_data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        create_private_file(target)  # 0600 before SQLite creates it with the umask (issue 18)
    command.upgrade(alembic_config(url), "heads")


def downgrade_to_base(url: str | None = None) -> None:
    command.downgrade(alembic_config(url), "base")
