"""The one clock of the service, so tests can move time (time-machine patches datetime.now)."""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """Timezone-aware UTC; SQLModel's UTCDateTime columns store UTC and return aware values."""
    return datetime.now(UTC)
