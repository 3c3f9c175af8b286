"""Full-text search over case subject and body: SQLite FTS5 or a PostgreSQL GIN tsvector index.

User text never reaches the search syntax: it is cut into word tokens, each quoted, all required (AND).
A case reference such as CMP-12 matches that case directly.
"""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, and_, false, func, literal_column, or_, select, text

from casemgr.cases.models import Case

_TOKEN = re.compile(r"\w+", re.UNICODE)
_REFERENCE = re.compile(r"^\s*([A-Za-z]{2,8})-(\d{1,12})\s*$")
MAX_TOKENS = 12


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
            # Literal SQL (no bound parameters) so the expression matches the GIN index ix_cases_fulltext.
            vector = func.to_tsvector(
                literal_column("'simple'"),
                func.coalesce(Case.subject, literal_column("''")).op("||")(literal_column("' '"))
                .op("||")(func.coalesce(Case.description, literal_column("''"))),
            )
            query_ts = func.plainto_tsquery(literal_column("'simple'"), " ".join(words))
            conditions.append(vector.op("@@")(query_ts))
        else:
            like_parts = [or_(Case.subject.ilike(f"%{w}%"), Case.description.ilike(f"%{w}%")) for w in words]
            conditions.append(and_(*like_parts))
    if not conditions:
        return false()
    return or_(*conditions)
