"""Full-text search over case subject and body: SQLite FTS5 or a PostgreSQL GIN tsvector index.

User text never reaches the search syntax: it is cut into word tokens, each quoted, all required (AND).
A case reference such as CMP-12 matches that case directly.
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, and_, false, literal_column, or_, select, text

from casemgr.cases.models import Case

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)  # letters and digits, as both tokenizers split
_REFERENCE = re.compile(r"^\s*([A-Za-z]{2,8})-(\d{1,12})\s*$")
MAX_TOKENS = 12
PG_FULLTEXT_EXPR = (
    "to_tsvector('simple', regexp_replace(coalesce(subject, '') || ' ' || coalesce(description, ''),"
    " '[^[:alnum:]]+', ' ', 'g'))"
)


def tokens(query: str) -> list[str]:
    return [t.lower() for t in _TOKEN.findall(query)][:MAX_TOKENS]


def text_condition(query: str, dialect: str) -> ColumnElement[bool]:
    ref = _REFERENCE.match(query)
    conditions: list[ColumnElement[bool]] = []
    if ref:
        conditions.append(Case.reference == f"{ref.group(1).upper()}-{int(ref.group(2))}")
    words = tokens(query)
    if words:
        if dialect == "sqlite":
            match = " ".join('"' + w.replace('"', '""') + '"' for w in words)
            ids = select(literal_column("rowid")).select_from(text("cases_fts")).where(text("cases_fts MATCH :fts_q"))
            conditions.append(Case.id.in_(ids.params(fts_q=match)))
        elif dialect == "postgresql":
            # The exact expression of the GIN index ix_cases_fulltext (migration 0005), so the planner uses it.
            conditions.append(
                text(f"{PG_FULLTEXT_EXPR} @@ plainto_tsquery('simple', :pg_q)").bindparams(pg_q=" ".join(words))
            )
        else:
            like_parts = [or_(Case.subject.ilike(f"%{w}%"), Case.description.ilike(f"%{w}%")) for w in words]
            conditions.append(and_(*like_parts))
    if not conditions:
        return false()
    return or_(*conditions)
