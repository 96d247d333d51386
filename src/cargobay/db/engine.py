"""Engine set-up and the one way request code reaches the database: a short transaction in a thread.

SQLite runs in WAL mode with a busy timeout, and write transactions start with ``BEGIN IMMEDIATE``
so two writers queue instead of failing on a lock upgrade. The same code runs on PostgreSQL.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

T = TypeVar("T")

_WRITE = "cargobay_write"


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 60}, pool_size=16)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_size=10, max_overflow=20, pool_pre_ping=True)


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
    """Runs units of work (functions of a ``Session``) in a worker thread, each in one transaction."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def read_sync(self, fn: Callable[..., T], *args: Any) -> T:
        with self._sessions() as session, session.begin():
            return fn(session, *args)

    def write_sync(self, fn: Callable[..., T], *args: Any) -> T:
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
        return await anyio.to_thread.run_sync(self.read_sync, fn, *args)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        return await anyio.to_thread.run_sync(self.write_sync, fn, *args)

    def session(self) -> Session:
        return self._sessions()

    def dispose(self) -> None:
        self.engine.dispose()
