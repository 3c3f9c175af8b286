"""Shapes of /api/views."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from casemgr.views.enums import SortKey


class ViewFilters(BaseModel):
    """The queue filters a view keeps (the same names as the /queue query parameters)."""

    model_config = {"extra": "forbid"}
    view: str | None = Field(default=None, max_length=100, description="a default view key the filters refine")
    queue: str | None = Field(default=None, max_length=80)
    type: str | None = Field(default=None, max_length=50)
    stage: str | None = Field(default=None, max_length=50)
    priority: str | None = Field(default=None, max_length=20)
    sla_state: str | None = Field(default=None, max_length=20)
    assignee: str | None = Field(default=None, max_length=100)
    category: str | None = Field(default=None, max_length=80)
    status: str | None = Field(default=None, max_length=20)
    q: str | None = Field(default=None, max_length=200)


class ViewIn(BaseModel):
    name: str = Field(min_length=1, max_length=80)
    filters: ViewFilters = Field(default_factory=ViewFilters)
    sort: SortKey = SortKey.SLA
    shared: bool = Field(default=False, description="shared with everyone (leads only)")


class ViewOut(BaseModel):
    id: int
    name: str
    filters: dict[str, str]
    sort: SortKey
    shared: bool
    owner: str | None
    created_at: datetime
    url: str = Field(description="the queue page showing this view")
