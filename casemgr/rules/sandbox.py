"""Compile and evaluate untrusted rule sets in a child process with a hard time limit (issue 18).

durable-rules compiles and matches in C while holding the GIL, so a rule set that makes it loop freezes every
request of the process, and no Python timeout can interrupt it. The validate and simulate endpoints therefore
do that work in a fresh process forked from a clean fork server (which has the rules modules loaded, so a child
starts in milliseconds), and kill it when the time limit passes. The serving process only waits on a pipe.

The child gets the caller's CASEMGR_* settings explicitly: the fork server was started once and does not see
later changes to the environment.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from multiprocessing.connection import Connection
from typing import Any

from casemgr import runtime
from casemgr.config import get_settings
from casemgr.errors import ServiceUnavailable, ValidationFailed

_PRELOAD = ["casemgr.rules.simulate", "casemgr.rules.store"]
_ctx_lock = threading.Lock()
_ctx: Any = None
# At most this many children per app process: a flood of uploads queues here instead of forking without end.
MAX_CHILDREN = 2
_children = threading.BoundedSemaphore(MAX_CHILDREN)


class SandboxTimeout(ValidationFailed):
    """The rule set needed more than the time limit: it is refused, nothing was changed."""


def _context() -> Any:
    global _ctx
    with _ctx_lock:
        if _ctx is None:
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(_PRELOAD)
            _ctx = ctx
        return _ctx


def _child(conn: Connection, env: dict[str, str], target: str, args: tuple[Any, ...]) -> None:
    try:
        for k in [k for k in os.environ if k.startswith("CASEMGR_")]:
            del os.environ[k]
        os.environ.update(env)
        runtime.rebuild()  # the caller's settings, not those the fork server started with
        result = ("ok", _TARGETS[target](*args))
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the parent as data
        problems = [p.as_dict() for p in getattr(exc, "problems", [])]
        result = ("problems", problems) if problems else ("error", f"{type(exc).__name__}: {exc}")
    try:
        conn.send(result)
    finally:
        conn.close()


def run(target: str, *args: Any, timeout_s: float | None = None) -> tuple[str, Any]:
    """Run `_TARGETS[target](*args)` in a child; ("ok", value) | ("problems", [...]) | ("error", message).

    Raises SandboxTimeout (422) when the child is still busy after the time limit (it is killed), and
    ServiceUnavailable (503) when the child died without an answer.
    """
    limit = get_settings().rules_sandbox_timeout_s if timeout_s is None else timeout_s
    if not _children.acquire(timeout=limit):
        raise ServiceUnavailable("the rules checker is busy with other rule sets; try again shortly")
    try:
        return _run(target, args, limit)
    finally:
        _children.release()


def _run(target: str, args: tuple[Any, ...], limit: float) -> tuple[str, Any]:
    ctx = _context()
    parent, child = ctx.Pipe(duplex=False)
    env = {k: v for k, v in os.environ.items() if k.startswith("CASEMGR_")}
    proc = ctx.Process(target=_child, args=(child, env, target, args), daemon=True)
    proc.start()
    child.close()
    try:
        if parent.poll(limit):
            try:
                return parent.recv()  # type: ignore[no-any-return]
            except EOFError:
                raise ServiceUnavailable("the rules checker stopped without an answer; try again") from None
        raise SandboxTimeout(f"the rule set took longer than {limit:g} s to compile and evaluate, so it was "
                             "refused (look for patterns or rules that make the engine loop); nothing was changed")
    finally:
        parent.close()
        if proc.is_alive():
            proc.kill()
        proc.join(5)
        proc.close()


# ------------------------------------------------------------------------------------------- targets (child side)


def _validate(files: dict[str, str]) -> None:
    from casemgr.rules.schema import RuleSource
    from casemgr.rules.store import validate_source

    validate_source(RuleSource(files=files))


def _simulate(current: dict[str, str], candidate: dict[str, str], facts: list[tuple[Any, dict[str, Any]]]
              ) -> dict[str, Any]:
    from casemgr.rules.compiler import compile_ruleset
    from casemgr.rules.schema import RuleSource, load_ruleset
    from casemgr.rules.simulate import compare

    cand = compile_ruleset(load_ruleset(RuleSource(files=candidate)))
    # The active set is compiled here too (both engines must live in the same process as the comparison).
    cur = compile_ruleset(load_ruleset(RuleSource(files=current)))
    return compare(cur, cand, facts)


def _sleep(seconds: float) -> None:
    """Stands in for a rule set that never finishes (tests of the time limit)."""
    import time

    time.sleep(seconds)


_TARGETS: dict[str, Any] = {"validate": _validate, "simulate": _simulate, "sleep": _sleep}
