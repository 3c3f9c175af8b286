"""A request-body size limit for every route, enforced before any body is parsed (JSON, form or multipart).

Without it a client could send a JSON body of any size and the app would read and parse all of it. The limit
leaves room for the largest legitimate request: a message of settings.max_message_bytes sent base64-encoded
(4/3 of its size) plus 1 MiB of JSON around it. Bodies over it get 413 with a clear message.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casemgr.config import get_settings


def body_limit() -> int:
    return get_settings().max_message_bytes * 4 // 3 + 1024 * 1024


async def _too_large(send: Send, limit: int) -> None:
    body = json.dumps({"error": "too_large",
                       "detail": f"the request body is larger than the limit of {limit} bytes"}).encode()
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = body_limit()
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = False
                if too_big:
                    await _too_large(send, limit)
                    return
        seen = 0
        exceeded = False
        replaced = False

        async def counted_receive() -> Message:
            nonlocal seen, exceeded
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:  # chunked or lying Content-Length: stop reading
                    exceeded = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            # Whatever the app answers after the body overflowed (a body parser may turn our exception into a 400)
            # is replaced by the 413.
            nonlocal replaced
            if exceeded:
                if not replaced and message["type"] == "http.response.start":
                    replaced = True
                    await _too_large(send, limit)
                return
            await send(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except _BodyTooLarge:
            if not replaced:
                replaced = True
                await _too_large(send, limit)


class _BodyTooLarge(Exception):
    pass


def request_capacity() -> int:
    """How many requests may be inside the app at once: what the database pool can serve without blocking.

    Sync routes and their `yield` dependencies run on a bounded thread pool (anyio: 40 threads), and a request
    holds its pooled connection from its first query until its dependency exits, which needs a thread again.
    When more requests are in flight than the pool has connections, every thread can end up waiting for a
    connection held by a request that waits for a thread: nothing moves until the 30 s pool timeout. Admitting
    at most as many requests as there are connections (and fewer than threads) rules that out; the rest wait
    here, in the event loop, without holding a thread or a connection.
    """
    settings = get_settings()
    pool = settings.db_pool_size + (20 if settings.is_sqlite else settings.db_pool_size)  # see casemgr.db
    return max(1, min(pool, 32))


class ConcurrencyLimitMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._sem: Any = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/static/"):
            await self.app(scope, receive, send)
            return
        import asyncio

        loop = asyncio.get_running_loop()
        if self._sem is None or self._sem[0] is not loop:  # one per event loop (test clients start their own)
            self._sem = (loop, asyncio.Semaphore(request_capacity()))
        async with self._sem[1]:
            await self.app(scope, receive, send)
