"""Engine set-up and the ways request code reaches the database.

* ``read``/``write`` run a unit of work (a function of an ORM ``Session``) in a worker thread, in
  one transaction; writes on SQLite start with ``BEGIN IMMEDIATE`` so writers queue instead of
  failing on a lock upgrade.
* ``fetch_one``/``fetch_all`` run a single-statement read for the hot path straight on the DBAPI
  cursor (SQLAlchemy's execution layer costs ~100 us a statement, several times the query): on
  SQLite inline on the event loop over a persistent autocommit connection (a WAL read takes
  microseconds and never waits for writers), on PostgreSQL in a worker thread.

Threads are bounded by the pool size, so a unit of work never waits for a connection.

A write that PostgreSQL aborts as a deadlock or a serialization failure (SQLSTATE 40P01, 40001: two
transactions took the same rows in opposite orders, and the server chose one to roll back) is run
again, whole, up to ``WRITE_ATTEMPTS`` times: the work functions are the transaction, with no effect
outside the database before their commit, so a rerun is what the client would have done.
"""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar

import anyio.to_thread
from anyio import CapacityLimiter
from sqlalchemy import Connection, Dialect, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from cargobay import observability
from cargobay.db.types import UtcDateTime

T = TypeVar("T")

_WRITE = "cargobay_write"
POOL_SIZE = 12
WRITE_ATTEMPTS = 4
_RERUN_STATES = frozenset({"40001", "40P01"})  # serialization_failure, deadlock_detected


def rerunnable(exc: BaseException) -> bool:
    """A transaction PostgreSQL rolled back to break a deadlock or a serialization conflict."""
    cause = getattr(exc, "orig", None) or exc  # SQLAlchemy wraps the driver's error
    return getattr(cause, "sqlstate", None) in _RERUN_STATES


def _with_reruns(once: Callable[[], T]) -> T:
    for attempt in range(WRITE_ATTEMPTS - 1):
        try:
            return once()
        except Exception as exc:
            if not rerunnable(exc):
                raise
            time.sleep(random.uniform(0, 0.01 * 2**attempt))  # apart, so the two do not meet again
    return once()


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 60},
            pool_size=POOL_SIZE + 2,
            max_overflow=4,
        )
        _configure_sqlite(engine)
        _count_connections(engine, POOL_SIZE + 6)
        return engine
    engine = create_engine(url, pool_size=POOL_SIZE + 2, max_overflow=8, pool_pre_ping=True)
    _count_connections(engine, POOL_SIZE + 10)
    return engine


def _count_connections(engine: Engine, size: int) -> None:
    observability.DB_POOL_SIZE.set(size)
    event.listen(engine, "checkout", lambda *_: observability.DB_POOL_IN_USE.inc())
    event.listen(engine, "checkin", lambda *_: observability.DB_POOL_IN_USE.dec())


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
        # Let SQLAlchemy (below) decide when transactions begin.
        dbapi_conn.isolation_level = None
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=60000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        write = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


class Database:
    """Units of work in worker threads, and inline single-statement reads for the hot path."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._bind_timestamp = timestamp_binder(self.engine.dialect)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)
        self._limiter: CapacityLimiter | None = None
        self._inline = threading.local()

    @property
    def limiter(self) -> CapacityLimiter:
        if self._limiter is None:  # created lazily: it belongs to the running event loop
            self._limiter = CapacityLimiter(POOL_SIZE)
        return self._limiter

    def read_sync(self, fn: Callable[..., T], *args: Any) -> T:
        with self._sessions() as session, session.begin():
            return fn(session, *args)

    def write_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return _with_reruns(partial(self._write_once, fn, *args))

    def _write_once(self, fn: Callable[..., T], *args: Any) -> T:
        with self._sessions() as session:
            # The first connection use begins the transaction, as BEGIN IMMEDIATE on SQLite.
            session.connection(execution_options={_WRITE: True})
            try:
                result = fn(session, *args)
                session.commit()
            except BaseException:
                session.rollback()
                raise
            return result

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(self.read_sync, fn, *args, limiter=self.limiter)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(self.write_sync, fn, *args, limiter=self.limiter)

    async def fetch_one(self, sql: str, *params: Any) -> tuple[Any, ...] | None:
        """First row of a single-statement read (``?`` placeholders); see the module doc."""
        rows = await self._fetch(sql, params, 1)
        return rows[0] if rows else None

    async def fetch_all(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return await self._fetch(sql, params, None)

    async def _fetch(self, sql: str, params: tuple[Any, ...], limit: int | None) -> list[tuple[Any, ...]]:
        if self.is_sqlite:
            return _run(self._inline_dbapi(), sql, params, limit)
        return await anyio.to_thread.run_sync(
            self._fetch_pooled, _pyformat(sql), params, limit, limiter=self.limiter
        )

    def _fetch_pooled(self, sql: str, params: tuple[Any, ...], limit: int | None) -> list[tuple[Any, ...]]:
        # A single-statement read needs no transaction: in autocommit the driver sends no BEGIN
        # before it, and the pool's reset on return finds nothing to roll back, so the read is one
        # round trip instead of three (measured: ~2x the rate of these reads on PostgreSQL).
        with self.engine.connect() as conn:
            dbapi: Any = conn.connection.driver_connection
            dbapi.autocommit = True
            try:
                return _run(dbapi, sql, params, limit)
            finally:
                try:
                    dbapi.autocommit = False
                except Exception:  # a broken connection: never hand it out again
                    conn.invalidate()

    def _inline_dbapi(self) -> Any:
        conn: Connection | None = getattr(self._inline, "conn", None)
        if conn is None or conn.closed:
            conn = self.engine.connect()
            self._inline.conn = conn
        return conn.connection.driver_connection

    async def write_raw(self, fn: Callable[..., T], *args: Any) -> T:
        """A short write transaction, ``fn(tx, *args)``, straight on the DBAPI connection in a thread.

        For hot write paths (upload sessions, blob commits) where an ORM session costs more than
        the statements; ``BEGIN IMMEDIATE`` on SQLite as for every writer.
        """
        return await anyio.to_thread.run_sync(self._write_raw_sync, fn, *args, limiter=self.limiter)

    def _write_raw_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return _with_reruns(partial(self._write_raw_once, fn, *args))

    def _write_raw_once(self, fn: Callable[..., T], *args: Any) -> T:
        conn = self.engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                if self.is_sqlite:
                    cursor.execute("BEGIN IMMEDIATE")
                result = fn(RawTx(cursor, self.is_sqlite, self._bind_timestamp), *args)
                conn.commit()
                return result
            except BaseException:
                conn.rollback()
                raise
            finally:
                cursor.close()
        finally:
            conn.close()

    def timestamp(self, value: datetime) -> Any:
        """A UTC time as the column type ``UtcDateTime`` stores it, for raw statements."""
        return self._bind_timestamp(value)

    def session(self) -> Session:
        return self._sessions()

    def dispose(self) -> None:
        conn: Connection | None = getattr(self._inline, "conn", None)
        if conn is not None:
            conn.close()
        self.engine.dispose()


class RawTx:
    """Statements of one raw transaction, with ``?`` placeholders on every database."""

    def __init__(self, cursor: Any, is_sqlite: bool, bind_timestamp: Callable[[datetime], Any]) -> None:
        self._cursor = cursor
        self.is_sqlite = is_sqlite
        self._bind_timestamp = bind_timestamp
        self._stamps: dict[datetime, Any] = {}

    @classmethod
    def of(cls, session: Session) -> RawTx:
        """The same transaction as an ORM unit of work, for shared raw helpers."""
        dbapi = session.connection().connection.driver_connection
        assert dbapi is not None
        dialect = session.get_bind().dialect
        return cls(dbapi.cursor(), dialect.name == "sqlite", timestamp_binder(dialect))

    def _execute(self, sql: str, params: tuple[Any, ...]) -> Any:
        self._cursor.execute(sql if self.is_sqlite else _pyformat(sql), params)
        return self._cursor

    def one(self, sql: str, *params: Any) -> tuple[Any, ...] | None:
        row = self._execute(sql, params).fetchone()
        return tuple(row) if row is not None else None

    def all(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self._execute(sql, params).fetchall()]

    def run(self, sql: str, *params: Any) -> int:
        """A statement without rows; returns how many rows it changed."""
        return int(self._execute(sql, params).rowcount)

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """One statement for each parameter tuple (executemany)."""
        if rows:
            self._cursor.executemany(sql if self.is_sqlite else _pyformat(sql), rows)

    def timestamp(self, value: datetime) -> Any:
        """What a ``UtcDateTime`` column stores for ``value`` (kept: the rows of a batch share times)."""
        bound = self._stamps.get(value)
        if bound is None:
            bound = self._stamps[value] = self._bind_timestamp(value)
        return bound

    @staticmethod
    def time(value: Any) -> datetime | None:
        """A ``UtcDateTime`` read raw (SQLite gives its text, PostgreSQL a naive datetime) as aware UTC."""
        if value is None:
            return None
        parsed = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return parsed.replace(tzinfo=UTC)


def timestamp_binder(dialect: Dialect) -> Callable[[datetime], Any]:
    """What a ``UtcDateTime`` column stores for a time on ``dialect``, for raw statements: the
    column type's own conversion (naive UTC) and the dialect's (SQLite: its DATETIME text)."""
    process = UtcDateTime().dialect_impl(dialect).bind_processor(dialect)
    assert process is not None
    return process


_PYFORMAT: dict[str, str] = {}


def _pyformat(sql: str) -> str:
    """``?`` placeholders -> ``%s`` (psycopg); hot-path SQL never has ``?`` or ``%`` in literals."""
    converted = _PYFORMAT.get(sql)
    if converted is None:
        converted = _PYFORMAT[sql] = sql.replace("?", "%s")
    return converted


def _run(dbapi: Any, sql: str, params: tuple[Any, ...], limit: int | None) -> list[tuple[Any, ...]]:
    cursor = dbapi.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchmany(limit) if limit else cursor.fetchall())
    finally:
        cursor.close()
