"""Group commit: requests hand their prepared writes to one writer thread, which stores whatever has queued up
meanwhile in one transaction, then answers each request.

Why: SQLite has one writer at a time, so concurrent requests that each open, fill and commit their own write
transaction queue behind one another, and each statement inside the lock hands the GIL to a waiting thread.
Batching turns 32 transactions of ~20 statements into one transaction of a few multi-row INSERTs (issue 10).
Nothing is acknowledged before its batch committed. A batch that fails is retried item by item through the
ordinary one-at-a-time path (`store_one`), so one bad item cannot sink the others and the caller gets exactly
the result or error it would have got without batching.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from typing import Generic, TypeVar

from casemgr.errors import ServiceUnavailable

log = logging.getLogger(__name__)

Item = TypeVar("Item")
Result = TypeVar("Result")

WAIT_S = 120.0  # longer than any busy_timeout: past it the writer is stuck, and the request says so
STUCK = "the database did not accept the write in time; please try again (a retry with the same id is safe)"


class GroupCommit(Generic[Item, Result]):
    def __init__(self, name: str, store_many: Callable[[Sequence[Item]], list[Result]],
                 store_one: Callable[[Item], Result], *, max_batch: int = 64) -> None:
        self.name = name
        self._store_many = store_many
        self._store_one = store_one
        self.max_batch = max_batch
        self._queue: queue.SimpleQueue[tuple[Item, Future[Result]]] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self.batches = 0
        self.items = 0
        self.fallbacks = 0

    def submit(self, item: Item) -> Result:
        """Store `item` with the next batch; returns its result (or raises its error) once that committed."""
        try:
            return self._enqueue(item).result(timeout=WAIT_S)
        except TimeoutError:
            raise ServiceUnavailable(STUCK) from None

    async def submit_async(self, item: Item) -> Result:
        """submit() for coroutines: waits on the event loop instead of holding a worker thread."""
        try:
            return await asyncio.wait_for(asyncio.wrap_future(self._enqueue(item)), WAIT_S)
        except TimeoutError:
            raise ServiceUnavailable(STUCK) from None

    def _enqueue(self, item: Item) -> Future[Result]:
        if self._thread is None or not self._thread.is_alive():
            with self._start_lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name=f"groupcommit-{self.name}",
                                                    daemon=True)
                    self._thread.start()
        fut: Future[Result] = Future()
        self._queue.put((item, fut))
        return fut

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            # No waiting for company: whatever queued while the previous batch committed goes in this one.
            while len(batch) < self.max_batch:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
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
