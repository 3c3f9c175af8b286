"""How `casemgr serve` runs uvicorn, in one place (issue 18)."""

from __future__ import annotations

from typing import Any

from casemgr.web.protocol import GuardedHttpToolsProtocol


def uvicorn_options() -> dict[str, Any]:
    # httptools with a header timeout and a per-client connection cap (casemgr.web.protocol); the body timeout
    # and the request slots are in the app (casemgr.web.bodyread, casemgr.web.limits).
    # proxy_headers off: X-Forwarded-For is believed only from CASEMGR_TRUSTED_PROXIES (casemgr.web.clientaddr),
    # not from uvicorn's default of loopback, which let any local caller choose its address.
    return {"loop": "uvloop", "http": GuardedHttpToolsProtocol, "log_level": "info", "access_log": False,
            "proxy_headers": False}
