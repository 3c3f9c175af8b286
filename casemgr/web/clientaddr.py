"""The real client address and scheme, believing X-Forwarded-For/-Proto only from proxies we were told about.

uvicorn's own proxy-header handling trusts loopback by default, so any local process (or a proxy that passes
the client's header through unchanged) could name any address and walk around the per-address limits on
login and the public form. `casemgr serve` turns uvicorn's handling off; this middleware, outermost in the
app, rewrites `scope["client"]` and `scope["scheme"]` only when the TCP peer is in
`settings.trusted_proxies` (addresses or CIDR ranges, empty by default). The forwarded chain is read from the
right: the first address that is not one of our proxies is the client, as anything left of it was written by
the client itself. Everything downstream (rate limits, the security log, audit actors, Secure cookies) reads
`request.client.host` / `request.url.scheme` and so sees the real values.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from casemgr.config import get_settings

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    nets = []
    for entry in entries:
        text = entry.strip()
        if text:
            nets.append(ipaddress.ip_network(text, strict=False))  # a bad entry fails loudly at the first request
    return tuple(nets)


def trusted_networks() -> tuple[Network, ...]:
    return _networks(tuple(get_settings().trusted_proxies))


def is_trusted(host: str | None, nets: Iterable[Network]) -> bool:
    if not host:
        return False
    try:
        addr = ipaddress.ip_address(host.strip().strip("[]"))
    except ValueError:
        return False
    return any(addr in net for net in nets)


def real_client(peer: str | None, forwarded_for: str | None, nets: tuple[Network, ...]) -> str | None:
    """The client address: the peer, unless the peer is a trusted proxy and the forwarded chain names another."""
    if not nets or not is_trusted(peer, nets) or not forwarded_for:
        return peer
    hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop, nets):
            try:
                return str(ipaddress.ip_address(hop.strip("[]")))
            except ValueError:
                return peer  # garbage from a trusted proxy: keep the peer rather than believe it
    return hops[0] if hops else peer


def client_address(request: Request) -> str:
    """What rate limits and the security log key on (already rewritten by the middleware)."""
    return request.client.host if request.client else "unknown"


class TrustedProxyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            nets = trusted_networks()
            peer = scope.get("client")
            if nets and peer and is_trusted(peer[0], nets):
                headers = dict((k.lower(), v) for k, v in scope.get("headers", []))
                xff = headers.get(b"x-forwarded-for")
                client = real_client(peer[0], xff.decode("latin-1") if xff else None, nets)
                scope = dict(scope)
                if client and client != peer[0]:
                    scope["client"] = (client, 0)
                proto = headers.get(b"x-forwarded-proto")
                if proto:
                    value = proto.decode("latin-1").split(",")[-1].strip().lower()
                    if value in ("http", "https"):
                        scope["scheme"] = value if scope["type"] == "http" else ("wss" if value == "https" else "ws")
        await self.app(scope, receive, send)
