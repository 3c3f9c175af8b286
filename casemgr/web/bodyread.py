"""Read a request's whole body, with a deadline, before the request takes one of the app's slots (issue 18).

The app admits a bounded number of requests at once (`limits.ConcurrencyLimitMiddleware`). A request whose body
was still arriving used to hold its slot while it waited, so about 30 clients sending one byte every few
seconds took every slot and /healthz and /login stopped answering. Here the body is collected in the event loop
first (waiting costs no thread, connection or slot) and must arrive within `body_timeout_s`, or the client gets
408 and the connection is closed. Only then does the request queue for a slot, with its body in hand.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casemgr.config import get_settings

# A large upload on a slow link gets one more second per this many declared bytes (Content-Length); the
# per-client connection cap bounds what a client can hold open that way.
MIN_BYTES_PER_S = 64 * 1024


def _declared(scope: Scope) -> int | None:
    """Body length the client declared: None for no body, -1 for chunked (length unknown)."""
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                n = int(value)
            except ValueError:
                return None  # the server refuses a malformed length before the app sees the request
            return n if n > 0 else None
        if name == b"transfer-encoding":
            return -1
    return None


async def request_timeout(send: Send, detail: str) -> None:
    body = json.dumps({"error": "request_timeout", "detail": detail}).encode()
    await send({"type": "http.response.start", "status": 408,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyReadMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = _declared(scope) if scope["type"] == "http" else None
        if declared is None:
            await self.app(scope, receive, send)
            return
        limit = get_settings().body_timeout_s + max(declared, 0) / MIN_BYTES_PER_S
        chunks: list[bytes] = []
        try:
            async with asyncio.timeout(limit):
                while True:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return  # the client left: nobody to answer
                    chunks.append(message.get("body", b""))
                    if not message.get("more_body", False):
                        break
        except TimeoutError:
            await request_timeout(send, f"the request body did not arrive within {limit:g} s")
            return
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: the server's disconnect notice, as before

        await self.app(scope, replay, send)
