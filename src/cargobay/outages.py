"""Faults the server answers rather than suffers: a full disk and an unreachable database.

``classify`` recognises them in any exception (an ``OSError`` from the blob store, a SQLite or
PostgreSQL error wrapped by SQLAlchemy) so each HTTP layer can answer 507 or 503 + ``Retry-After``
with a clear message and one log line, instead of a 500 and a traceback per request.

``DiskGuard`` keeps deletes working on a full disk (the embedded deployment, where the database and
the blobs share the data directory): a reserve file holds back some space; once the disk is full the
reserve is released, and writes are refused up front until free space is back, so what the reserve
freed is left to the deletes (and the database's journal) that free space.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
import threading
import time
from enum import Enum
from pathlib import Path

from sqlalchemy import exc as sa_exc
from structlog.typing import FilteringBoundLogger as BoundLogger

from cargobay import observability
from cargobay.domain.errors import DomainError, StorageFull, Unavailable

_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
RESERVE_FILE = "space-reserve"
RESERVE_BYTES = 32 * 1024 * 1024


class Fault(Enum):
    STORAGE_FULL = "storage full"
    DATABASE_UNAVAILABLE = "database unavailable"


def classify(exc: BaseException) -> Fault | None:
    """The known fault behind ``exc`` (walking its causes), or None for anything else."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        fault = _one(current)
        if fault is not None:
            return fault
        orig = getattr(current, "orig", None)
        current = orig if isinstance(orig, BaseException) else (current.__cause__ or current.__context__)
    return None


def _one(exc: BaseException) -> Fault | None:
    if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
        return Fault.STORAGE_FULL
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        if "disk is full" in text or "database or disk is full" in text:
            return Fault.STORAGE_FULL
        if "unable to open database" in text or "disk i/o error" in text:
            return Fault.DATABASE_UNAVAILABLE
        return None
    if isinstance(exc, sa_exc.TimeoutError | sa_exc.DisconnectionError):
        return Fault.DATABASE_UNAVAILABLE
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return Fault.DATABASE_UNAVAILABLE
    return _psycopg(exc)


def _psycopg(exc: BaseException) -> Fault | None:
    try:
        import psycopg
        from psycopg import errors
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return None
    if isinstance(exc, errors.DiskFull):
        return Fault.STORAGE_FULL
    if isinstance(exc, errors.AdminShutdown | errors.CannotConnectNow | errors.CrashShutdown):
        return Fault.DATABASE_UNAVAILABLE
    if isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError):
        return Fault.DATABASE_UNAVAILABLE
    return None


class DiskGuard:
    """Space for deletes on a full disk (see the module docstring); inert when ``root`` is None."""

    def __init__(self, root: Path | None, reserve: int = RESERVE_BYTES, recheck_seconds: float = 1.0) -> None:
        self.root = root
        self.reserve = reserve
        self.recheck = recheck_seconds
        self._full = False
        self._checked = 0.0
        self._lock = threading.Lock()

    def start(self) -> None:
        """Make sure the reserve exists (a fresh start, or space came back while stopped)."""
        if self.root is not None and self._free() >= 2 * self.reserve:
            self._make_reserve()

    def note_full(self) -> None:
        """A write failed for want of space: release the reserve, refuse writes until space is back."""
        if self.root is None:
            return
        with self._lock:
            self._full = True
            self._checked = time.monotonic()
        (self.root / RESERVE_FILE).unlink(missing_ok=True)

    @property
    def full(self) -> bool:
        """Whether writes are refused now; looks at the disk again at most once per ``recheck``."""
        if not self._full:
            return False
        now = time.monotonic()
        with self._lock:
            if now - self._checked < self.recheck:
                return True
            self._checked = now
        if self._free() >= 2 * self.reserve:
            self._make_reserve()
            self._full = False
        return self._full

    def _free(self) -> int:
        assert self.root is not None
        try:
            return shutil.disk_usage(self.root).free
        except OSError:
            return 0

    def _make_reserve(self) -> None:
        assert self.root is not None
        path = self.root / RESERVE_FILE
        try:
            if path.exists() and path.stat().st_size >= self.reserve:
                return
            with open(path, "wb") as f:
                try:
                    os.posix_fallocate(f.fileno(), 0, self.reserve)
                except OSError as exc:
                    if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                        raise
                    block = bytes(1024 * 1024)  # a file system without fallocate: write it out
                    for _ in range(self.reserve // len(block)):
                        f.write(block)
                os.fsync(f.fileno())
        except OSError:
            path.unlink(missing_ok=True)  # no room for it now: the next check tries again


def answer(exc: BaseException, guard: DiskGuard, log: BoundLogger, **where: object) -> DomainError | None:
    """The domain error to answer ``exc`` with when it is a known fault (logged as one line, no
    traceback; a full disk also trips ``guard``), or None for anything else."""
    fault = classify(exc)
    if fault is None:
        return None
    error = f"{type(exc).__name__}: {str(exc)[:200]}"
    if fault is Fault.STORAGE_FULL:
        guard.note_full()
        observability.STORAGE_FULL.inc()
        log.warning("storage_full", error=error, **where)
        return StorageFull()
    observability.DB_UNAVAILABLE.inc()
    log.warning("database_unavailable", error=error, **where)
    return Unavailable()
