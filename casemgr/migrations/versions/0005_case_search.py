"""cases: full-text search over subject and body (SQLite FTS5 external-content table; PostgreSQL GIN tsvector)

Revision ID: 0005_case_search
Revises: 0004_case_sla_indexes
Create Date: 2026-11-25 10:20:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0005_case_search'
down_revision: str | Sequence[str] | None = '0004_case_sla_indexes'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DELETE_OLD = (
    "INSERT INTO cases_fts(cases_fts, rowid, subject, description) VALUES ('delete', old.id, old.subject, old.description);"
)
# Non-alphanumerics become spaces first, as SQLite's unicode61 tokenizer does: PostgreSQL's parser would
# otherwise swallow HTML-like text ("<img src=x>") as tags and never index its words.
PG_EXPR = (
    "to_tsvector('simple', regexp_replace(coalesce(subject, '') || ' ' || coalesce(description, ''),"
    " '[^[:alnum:]]+', ' ', 'g'))"
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE cases_fts USING fts5(subject, description, content='cases', content_rowid='id',"
            " tokenize='unicode61 remove_diacritics 2')"
        )
        op.execute(
            "CREATE TRIGGER cases_fts_ai AFTER INSERT ON cases BEGIN "
            "INSERT INTO cases_fts(rowid, subject, description) VALUES (new.id, new.subject, new.description); END"
        )
        op.execute(
            "CREATE TRIGGER cases_fts_ad AFTER DELETE ON cases BEGIN "
            f"{DELETE_OLD} END"
        )
        # Only a change of the searched text touches the index: version bumps and routing updates stay cheap.
        op.execute(
            "CREATE TRIGGER cases_fts_au AFTER UPDATE OF subject, description ON cases BEGIN "
            f"{DELETE_OLD} "
            "INSERT INTO cases_fts(rowid, subject, description) VALUES (new.id, new.subject, new.description); END"
        )
        op.execute("INSERT INTO cases_fts(cases_fts) VALUES ('rebuild')")
    elif bind.dialect.name == "postgresql":
        op.execute(f"CREATE INDEX ix_cases_fulltext ON cases USING gin ({PG_EXPR})")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        for trg in ("cases_fts_ai", "cases_fts_ad", "cases_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trg}")
        op.execute("DROP TABLE IF EXISTS cases_fts")
    elif bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_cases_fulltext")
