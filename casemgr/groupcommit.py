"""Group commit: requests hand their prepared writes to one writer thread, which stores whatever has queued up
meanwhile in one transaction, then answers each request.

Why: SQLite has one writer at a time, so concurrent requests that each open, fill and commit their own write
transaction queue behind one another, and each statement inside the lock hands the GIL to a waiting thread.
Batching turns 32 transactions of ~20 statements into one transaction of a few multi-row INSERTs (issue 10).
Nothing is acknowledged before its batch committed. A batch that fails is retried item by item through the
ordinary one-at-a-time path (`store_one`), so one bad item cannot sink the others and the caller gets exactly
the result or error it would have got without batching.

Announced items (`expect`): a request that knows an item is on its way (an SMTP session that sent MAIL FROM will
send its message next) can say so. While announced items are outstanding the writer waits for them, up to
`gather_s` after the batch's first item, instead of committing a batch of one and the rest right after. A batch
costs the writer a fixed ~15 statements and an fsync whatever its size, and in one Python process the time the
writer waits is spent by the threads preparing those items, so waiting costs no throughput (issue 23: SMTP
batches averaged 1.9 messages with 4 senders, and the per-batch cost was most of the writer's CPU).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

from casemgr.errors import ServiceUnavailable

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

WAIT_S = 120.0  # longer than any busy_timeout: past it the writer is stuck, and the request says so
STUCK = "the database did not accept the write in time; please try again (a retry with the same id is safe)"
STALE_S = 5.0  # an announcement older than this is not waited for (a session that stalled mid-transaction)


class GroupCommit(Generic[Item, Result]):
    def __init__(self, name: str, store_many: Callable[[Sequence[Item]], list[Result]],
                 store_one: Callable[[Item], Result], *, max_batch: int = 64, gather_s: float = 0.0) -> None:
        self.name = name
        self._store_many = store_many
        self._store_one = store_one
        self.max_batch = max_batch
        self.gather_s = gather_s
        self._pending: deque[tuple[Item, Future[Result]]] = deque()
        self._expected: dict[int, float] = {}  # announcement ticket -> when announced (time.monotonic)
        self._tickets = itertools.count(1)
        self._cond = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batches = 0
        self.items = 0
        self.fallbacks = 0

    def expect(self) -> int:
        """Announce an item that will be submitted soon; returns the ticket to pass to submit() or release()."""
        ticket = next(self._tickets)
        with self._cond:
            self._expected[ticket] = time.monotonic()
        return ticket

    def release(self, ticket: int | None) -> None:
        """Withdraw an announcement whose item will not come (rejected, reset, connection lost); no-op if used."""
        if ticket is None:
            return
        with self._cond:
            if self._expected.pop(ticket, None) is not None:
                self._cond.notify()

    def submit(self, item: Item, ticket: int | None = None) -> Result:
        """Store `item` with the next batch; returns its result (or raises its error) once that committed."""
        try:
            return self._enqueue(item, ticket).result(timeout=WAIT_S)
        except TimeoutError:
            raise ServiceUnavailable(STUCK) from None

    async def submit_async(self, item: Item, ticket: int | None = None) -> Result:
        """submit() for coroutines: waits on the event loop instead of holding a worker thread."""
        try:
            return await asyncio.wait_for(asyncio.wrap_future(self._enqueue(item, ticket)), WAIT_S)
        except TimeoutError:
            raise ServiceUnavailable(STUCK) from None

    def _enqueue(self, item: Item, ticket: int | None = None) -> Future[Result]:
        if self._thread is None or not self._thread.is_alive():
            with self._start_lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name=f"groupcommit-{self.name}",
                                                    daemon=True)
                    self._thread.start()
        fut: Future[Result] = Future()
        with self._cond:
            # Queued and un-announced at once: the writer never sees the item as neither coming nor there.
            self._pending.append((item, fut))
            if ticket is not None:
                self._expected.pop(ticket, None)
            self._cond.notify()
        return fut

    def _awaited(self, now: float) -> bool:
        """Whether announced items are still on their way (caller holds the lock)."""
        if not self._expected:
            return False
        fresh = {t: at for t, at in self._expected.items() if now - at < STALE_S}
        if len(fresh) != len(self._expected):
            self._expected = fresh
        return bool(fresh)

    def _take(self) -> list[tuple[Item, Future[Result]]]:
        with self._cond:
            while not self._pending:
                self._cond.wait()
            if self.gather_s > 0:
                deadline = time.monotonic() + self.gather_s
                while len(self._pending) < self.max_batch:
                    now = time.monotonic()
                    if now >= deadline or not self._awaited(now):
                        break
                    self._cond.wait(deadline - now)
            # Whatever queued while the previous batch committed (or arrived while gathering) goes in this one.
            return [self._pending.popleft() for _ in range(min(self.max_batch, len(self._pending)))]

    def _run(self) -> None:
        while True:
            batch = self._take()
            try:
                self._commit(batch)
            except BaseException:  # noqa: BLE001 - the writer must outlive any batch
                log.exception("group commit %s: batch of %d failed unexpectedly", self.name, len(batch))
                for _, fut in batch:
                    if not fut.done():
                        fut.set_exception(ServiceUnavailable(STUCK))

    def _commit(self, batch: list[tuple[Item, Future[Result]]]) -> None:
        items = [item for item, _ in batch]
        try:
            results = self._store_many(items)
        except Exception as exc:  # noqa: BLE001 - retried one by one below, each with its own outcome
            log.info("group commit %s: batch of %d failed (%s); storing one by one", self.name, len(items), exc)
            self.fallbacks += 1
            for item, fut in batch:
                try:
                    fut.set_result(self._store_one(item))
                except Exception as one_exc:  # noqa: BLE001 - handed to the waiting request
                    fut.set_exception(one_exc)
            return
        self.batches += 1
        self.items += len(items)
        for (_, fut), result in zip(batch, results, strict=True):
            if isinstance(result, BaseException):  # one item's own error, after the others committed
                fut.set_exception(result)
            else:
                fut.set_result(result)
