"""uvicorn's httptools protocol with the two guards a public server needs (issue 18).

- Header timeout: a request's headers must be complete within `header_timeout_s` of its first byte (or of
  the connection opening), or the client gets 408 and the connection is closed. uvicorn has a keep-alive idle
  timeout but none for a request that trickles in, so a slow-headers client kept its connection for ever.
- Per-client connection cap: at most `max_connections_per_client` open connections per client address in this
  process; more are answered 503 and closed at once. One address cannot take every socket the process has.
  Behind a reverse proxy every connection comes from the proxy: raise the cap or set it to 0 (no cap) there, and
  let the proxy cap per client.

The body timeout lives in the app (`casemgr.web.bodyread`), so it also holds under any ASGI server.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from casemgr.config import get_settings


def _response(status: int, reason: str, detail: str) -> bytes:
    body = detail.encode()
    return (f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode() + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        settings = get_settings()
        self._header_timeout = settings.header_timeout_s
        self._per_client = settings.max_connections_per_client
        self._header_timer: asyncio.TimerHandle | None = None
        self._counted: str | None = None

    def _counts(self) -> dict[str, int]:
        counts = getattr(self.server_state, "casemgr_per_client", None)
        if counts is None:
            counts = {}
            self.server_state.casemgr_per_client = counts  # type: ignore[attr-defined]
        return counts

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        host = self.client[0] if self.client else None
        if host is not None and self._per_client > 0:
            counts = self._counts()
            if counts.get(host, 0) >= self._per_client:
                self.logger.warning("refused a connection from %s: %d connections already open", host,
                                    self._per_client)
                transport.write(_response(503, "Service Unavailable",
                                          "too many connections from your address; close some and retry"))
                transport.close()
                return
            counts[host] = counts.get(host, 0) + 1
            self._counted = host
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        if self._counted is not None:
            counts = self._counts()
            left = counts.get(self._counted, 1) - 1
            if left > 0:
                counts[self._counted] = left
            else:
                counts.pop(self._counted, None)
            self._counted = None
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm_header_timer()  # the next request on a kept-alive connection gets its own deadline

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        super().on_headers_complete()

    def _arm_header_timer(self) -> None:
        if self._header_timer is None and self._header_timeout > 0:
            self._header_timer = self.loop.call_later(self._header_timeout, self._headers_too_slow)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_too_slow(self) -> None:
        self._header_timer = None
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_response(408, "Request Timeout",
                                           f"request headers did not arrive within {self._header_timeout:g} s"))
            self.transport.close()
