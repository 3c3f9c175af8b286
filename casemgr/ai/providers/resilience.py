"""Bounded retries with exponential backoff, and a circuit breaker shared per provider endpoint."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from casemgr.ai.providers.base import AIError, AIUnavailable

T = TypeVar("T")


class CircuitBreaker:
    """Closed -> open after `threshold` consecutive failures; after `cooldown_s` one trial call
    is let through (half-open); success closes it, failure opens it again."""

    def __init__(self, threshold: int = 5, cooldown_s: float = 30.0, clock: Callable[[], float] = time.monotonic):
        self.threshold = threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._lock = threading.Lock()

    @property
    def state(self) -> str:
        with self._lock:
            if self._opened_at is None:
                return "closed"
            return "half-open" if self._clock() - self._opened_at >= self.cooldown_s else "open"

    def allow(self) -> bool:
        return self.state != "open"

    def success(self) -> None:
        with self._lock:
            self._failures = 0
            self._opened_at = None

    def failure(self) -> None:
        with self._lock:
            self._failures += 1
            if self._failures >= self.threshold or self._opened_at is not None:
                self._opened_at = self._clock()


def call_with_retries(
    fn: Callable[[], T],
    *,
    breaker: CircuitBreaker,
    max_retries: int = 2,
    base_delay_s: float = 0.2,
    max_delay_s: float = 2.0,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run fn; retry retryable AIErrors up to max_retries times with jittered exponential backoff."""
    if not breaker.allow():
        raise AIUnavailable("circuit open: provider failed repeatedly, not calling it for now")
    attempt = 0
    while True:
        try:
            result = fn()
        except AIError as exc:
            breaker.failure()
            if not exc.retryable or attempt >= max_retries or not breaker.allow():
                raise
            delay = min(max_delay_s, base_delay_s * (2**attempt)) * (0.5 + random.random() / 2)
            sleep(delay)
            attempt += 1
            continue
        breaker.success()
        return result
