"""A small HTTP/1.1 load generator: N keep-alive connections on one asyncio (uvloop) loop.

Why not httpx or threads: on a 2-core machine the client competes with the server for CPU, and a thread-per-
client Python client costs more CPU per request than the server under test. Raw asyncio streams with prebuilt
requests cost a few microseconds each, so the server, not the client, sets the pace. The floor and the system
under test are driven by the same generator, so the ratio between them is fair either way.
"""

from __future__ import annotations

import asyncio
import gc
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)", re.IGNORECASE)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding:\s*chunked", re.IGNORECASE)
_CLOSE = re.compile(rb"\r\nconnection:\s*close", re.IGNORECASE)


def build_request(method: str, path: str, *, host: str, headers: dict[str, str] | None = None,
                  body: bytes = b"") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}"]
    for k, v in (headers or {}).items():
        lines.append(f"{k}: {v}")
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def percentile(values: list[float], p: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


@dataclass
class Result:
    n: int = 0
    elapsed_s: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # transport errors (connection reset, timeout)
    bodies: list[bytes] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return sum(c for s, c in self.statuses.items() if 200 <= s < 300)

    def summary(self) -> dict[str, Any]:
        lat = self.latencies_ms
        return {
            "n": self.n, "ok": self.ok, "errors": self.errors + (self.n - self.ok - self.errors),
            "per_s": round(self.ok / self.elapsed_s, 1) if self.elapsed_s else 0.0,
            "p50_ms": round(percentile(lat, 50), 2), "p95_ms": round(percentile(lat, 95), 2),
            "p99_ms": round(percentile(lat, 99), 2), "max_ms": round(max(lat), 2) if lat else 0.0,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
        }


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    close = bool(_CLOSE.search(head))
    m = _CONTENT_LENGTH.search(head)
    if m:
        body = await reader.readexactly(int(m.group(1))) if int(m.group(1)) else b""
    elif _CHUNKED.search(head):
        parts = []
        while True:
            size_line = await reader.readuntil(b"\r\n")
            size = int(size_line.split(b";")[0].strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            parts.append(chunk[:-2])
        body = b"".join(parts)
    else:
        body = await reader.read()
        close = True
    return status, body, close


async def _run(host: str, port: int, make: Callable[[int], bytes], n: int, concurrency: int,
               keep_bodies: bool, timeout_s: float) -> Result:
    result = Result(n=n)
    counter = iter(range(n))

    async def connection() -> None:
        reader = writer = None
        for i in counter:
            request = make(i)
            for attempt in range(2):  # one reconnect if the server closed an idle keep-alive connection
                try:
                    if writer is None:
                        reader, writer = await asyncio.open_connection(host, port)
                    assert reader is not None
                    t0 = time.perf_counter()
                    writer.write(request)
                    status, body, close = await asyncio.wait_for(_read_response(reader), timeout_s)
                    result.latencies_ms.append((time.perf_counter() - t0) * 1000)
                    result.statuses[status] = result.statuses.get(status, 0) + 1
                    if keep_bodies:
                        result.bodies.append(body)
                    if close:
                        writer.close()
                        reader = writer = None
                    break
                except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                    if writer is not None:
                        writer.close()
                    reader = writer = None
                    if attempt == 1:
                        result.errors += 1
        if writer is not None:
            writer.close()

    t0 = time.perf_counter()
    await asyncio.gather(*(connection() for _ in range(concurrency)))
    result.elapsed_s = time.perf_counter() - t0
    return result


def run(host: str, port: int, make: Callable[[int], bytes], *, n: int, concurrency: int = 32,
        keep_bodies: bool = False, timeout_s: float = 60.0) -> Result:
    """Send `make(i)` for i in range(n) over `concurrency` keep-alive connections; latency per request.

    The client's own garbage collector is kept out of the measurement: collected before the run, off during it.
    The bench process has the whole application imported, and one full collection there stopped this loop for
    74 ms with 32 requests in flight: all of them, answered meanwhile, were timed 74 ms late, which alone made a
    round's p99 (issue 23). Reference counting still frees what a run makes; only cycles wait until it ends."""
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:  # pragma: no cover - uvloop is a dependency
        runner = asyncio.run
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    try:
        return runner(_run(host, port, make, n, concurrency, keep_bodies, timeout_s))
    finally:
        if enabled:
            gc.enable()
