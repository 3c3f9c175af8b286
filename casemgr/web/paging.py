"""Limits for every list endpoint (issue 18): `limit` (default 50, at most 200) and `offset` query parameters.

A list route without a limit answers with every row it finds, which an ordinary client can make as large as it
likes (suggestions pile up; a case's notes grow with each email). Out-of-range values are a 422 from FastAPI's
query validation. Routes with keyset cursors (`GET /api/cases`) take the same limits with `cursor`.
"""

from __future__ import annotations

from typing import Annotated, NamedTuple

from fastapi import Depends, Query

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
MAX_OFFSET = 1_000_000


class Paging(NamedTuple):
    limit: int
    offset: int


def paging(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"Items per page (1-{MAX_LIMIT}).")] = DEFAULT_LIMIT,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET, description="Items to skip (next page: offset + limit).")] = 0,
) -> Paging:
    return Paging(limit, offset)


Page = Annotated[Paging, Depends(paging)]
