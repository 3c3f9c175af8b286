"""What the security log records."""

from __future__ import annotations

from enum import StrEnum


class SecurityEventKind(StrEnum):
    LOGIN_SUCCEEDED = "login_succeeded"
    LOGIN_FAILED = "login_failed"  # wrong password or unknown user: recorded alike, with the name typed
    LOGIN_THROTTLED = "login_throttled"  # an attempt refused while a delay is in force
    THROTTLE_IMPOSED = "throttle_imposed"  # a failure that started or lengthened a delay
    LOGOUT = "logout"
    ACCESS_DENIED = "access_denied"  # 403 for a signed-in user or an API key
    CSRF_REFUSED = "csrf_refused"
    RATE_LIMITED = "rate_limited"  # 429 from any limit (login, public form, acknowledgements)
