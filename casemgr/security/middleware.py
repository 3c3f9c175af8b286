"""Every 403 and 429 reaches the security log, whichever layer produced it (issue 18).

Most refusals are recorded where they happen, with their precise kind (the exception handler for
PermissionDenied/RateLimited, the CSRF middleware, the login form, the public form); those set
`request.state.security_logged`. Some pages catch a domain error and render their own 403 page; this
middleware, just inside the trusted-proxy one, records any 403/429 that nobody recorded yet.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from casemgr.security.enums import SecurityEventKind

LOGGED = "security_logged"


def mark_logged(scope_or_state: object) -> None:
    """Say that this request's refusal is in the security log already (pass request.state or an ASGI scope)."""
    if isinstance(scope_or_state, dict):
        scope_or_state.setdefault("state", {})[LOGGED] = True
    else:
        setattr(scope_or_state, LOGGED, True)


class RefusalLogMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})  # shared with every layer inside, even through scope copies

        async def logging_send(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] in (403, 429) \
                    and not state.get(LOGGED):
                from casemgr.security.service import record_async

                state[LOGGED] = True
                principal = state.get("principal")
                client = scope.get("client")
                kind = SecurityEventKind.ACCESS_DENIED if message["status"] == 403 else SecurityEventKind.RATE_LIMITED
                actor = getattr(principal, "actor", None)
                await record_async(kind, client=client[0] if client else "unknown", username=actor,
                                   path=f"{scope.get('method', '')} {scope.get('path', '')}",
                                   detail=f"HTTP {message['status']}", actor=actor)
            await send(message)

        await self.app(scope, receive, logging_send)
