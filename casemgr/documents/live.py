"""Hot reload: the working form of the document in force, rebuilt when the active version changes.

Where the document in force comes from:
1. the active row of policy_versions for the kind, once one was published, else
2. the shipped file(s) under the policies dir (a development default; edits are picked up too).

The check is cheap: one indexed query for the active version (or a few stat() calls for files), at most once
per `interval_s`. Only when that key changes is the document loaded and rebuilt, outside any lock the readers
take. A new version that fails to build is refused and the running one stays in force (the problem is logged
and kept in `last_error`); with nothing running yet, the error is raised, or `fallback()` is used when given.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Generic, TypeVar

from sqlalchemy import select
from sqlmodel import Session, col

from casemgr.documents import service
from casemgr.documents.document import Document, DocumentType, path_stamp
from casemgr.documents.models import PolicyVersion

log = logging.getLogger(__name__)
T = TypeVar("T")


def _row_of_version(session: Session, kind: str, version: str) -> PolicyVersion | None:
    return session.execute(
        select(PolicyVersion).where(col(PolicyVersion.kind) == kind, col(PolicyVersion.version) == version)
        .order_by(col(PolicyVersion.id).desc()).limit(1)
    ).scalar_one_or_none()


class LiveDocument(Generic[T]):
    """One process's built copy of a kind's document in force (`value`), with its source `key`.

    `build(document, label)` turns a document into the working form (it raises on an invalid one);
    `on_change(value)` installs a new one (under the reload lock, so two reloads never interleave) and returns
    whether anything changed for readers.
    """

    def __init__(self, dtype: DocumentType[Any], build: Callable[[Document, str], T], *, interval_s: float = 0.0,
                 use_db: bool = True, path: Callable[[], Path] | None = None,
                 fallback: Callable[[], T] | None = None, on_change: Callable[[T], bool] | None = None) -> None:
        self.dtype = dtype
        self.build = build
        self.interval_s = interval_s
        self.use_db = use_db
        self.path = path or dtype.shipped_path
        self.fallback = fallback
        self.on_change = on_change
        self.value: T | None = None
        self.key: Any = None  # ("db", version) or ("files", path, stamp)
        self.last_error: str | None = None
        self.reloads = 0
        self._next_check = 0.0
        self._lock = threading.Lock()  # one reload at a time; readers never wait for it

    def reset(self) -> None:
        with self._lock:
            self.value, self.key, self.last_error, self._next_check = None, None, None, 0.0

    def due(self) -> bool:
        """Whether the next refresh() would read the source (a database query): async callers run refresh() on a
        worker thread first, so the event loop never waits on that read."""
        return self.value is None or time.monotonic() >= self._next_check

    def _db_version(self, session: Session | None) -> str | None:
        if not self.use_db:
            return None
        try:
            if session is not None:
                return service.active_version(session, self.dtype.kind)
            from casemgr.db import read_session

            with read_session() as s:
                return service.active_version(s, self.dtype.kind)
        except Exception as exc:  # noqa: BLE001 - no database or table yet: the files are in force
            log.debug("%s: no database version (%s)", self.dtype.kind, exc)
            return None

    def _load_db(self, session: Session | None, version: str) -> Document:
        # By version, not "the active row": a publish in between cannot hand us a different version than the key.
        def load(s: Session) -> Document:
            row = _row_of_version(s, self.dtype.kind, version)
            if row is None:
                raise RuntimeError(f"{self.dtype.kind} version {version} disappeared")
            return self.dtype.from_row(row)

        if session is not None:
            return load(session)
        from casemgr.db import read_session

        with read_session() as s:
            return load(s)

    def wanted(self, session: Session | None = None) -> tuple[Any, str, Callable[[], Document]]:
        """(key, label, loader) of the document that should be in force now: the cheap check."""
        version = self._db_version(session)
        if version is not None:
            return ("db", version), f"policy_versions:{version}", lambda: self._load_db(session, version)
        p = self.path()
        return ("files", str(p), path_stamp(p, self.dtype.globs)), str(p), lambda: self.dtype.read_path(p)

    def refresh(self, session: Session | None = None, *, force: bool = False) -> bool:
        """Look for a new document in force (rate limited unless forced). True if readers now see a new one."""
        if not force and not self.due():
            return False
        if not self._lock.acquire(blocking=self.value is None or force):
            return False  # another thread is reloading; keep serving the current value
        try:
            self._next_check = time.monotonic() + self.interval_s
            key, label, load = self.wanted(session)
            if key == self.key and self.value is not None:
                return False
            try:
                new = self.build(load(), label)
            except Exception as exc:
                self.last_error, self.key = str(exc), key  # don't rebuild the same broken content every check
                log.error("%s: refusing the new version, keeping the running one:\n%s", self.dtype.kind, exc)
                if self.value is None:
                    if self.fallback is None:
                        raise
                    self.value = self.fallback()
                return False
            self.last_error, self.key, self.value = None, key, new
            self.reloads += 1
            return self.on_change(new) if self.on_change is not None else True
        finally:
            self._lock.release()

    def get(self, session: Session | None = None) -> T:
        self.refresh(session)
        assert self.value is not None  # the first refresh loads (waiting for the lock), falls back or raises
        return self.value
