"""Domain exceptions; casemgr.web.errors maps them to HTTP status codes in one place."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    status_code = 400
    code = "error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class StaleVersion(Conflict):
    code = "stale_version"


class InvalidTransition(Conflict):
    code = "invalid_transition"


class ValidationFailed(DomainError):
    status_code = 422
    code = "validation_failed"


class PermissionDenied(DomainError):
    status_code = 403
    code = "forbidden"


class Unauthenticated(DomainError):
    status_code = 401
    code = "unauthenticated"


class TooLarge(DomainError):
    status_code = 413
    code = "too_large"


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"


class ServiceUnavailable(DomainError):
    status_code = 503
    code = "unavailable"


class BadRequest(DomainError):
    """A request the server cannot read at all, such as a malformed pagination cursor."""

    status_code = 400
    code = "bad_request"
