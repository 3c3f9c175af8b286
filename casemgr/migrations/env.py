"""Alembic environment: the URL comes from casemgr settings, so every command honours CASEMGR_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

from casemgr.config import get_settings
from casemgr.models_registry import metadata

config = context.config
target_metadata = metadata


def _url() -> str:
    return config.attributes.get("url") or get_settings().effective_database_url


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()


def _include_name(name, type_, parent_names):  # type: ignore[no-untyped-def]
    # Full-text search objects are managed by hand in 0005_case_search (FTS5 virtual table, GIN expression index).
    return not (name or "").startswith(("cases_fts", "ix_cases_fulltext"))


def _run(connection) -> None:  # type: ignore[no-untyped-def]
    context.configure(
        include_name=_include_name,
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
