"""A write PostgreSQL rolls back to break a deadlock is run again and succeeds; other errors are not."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cargobay.db.engine import Database, RawTx

Write = Callable[[Callable[[Any], int]], Awaitable[int]]


async def _deadlock(db: Database, write: Write, execute: Callable[[Any, str], None]) -> list[int]:
    """Two writers take rows 1 and 2 in opposite orders, both holding their first when they ask for
    the second: PostgreSQL aborts one (40P01), whose rerun then goes through."""
    with db.engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS rerun_probe (id INT PRIMARY KEY, n INT)")
        conn.exec_driver_sql("DELETE FROM rerun_probe")
        conn.exec_driver_sql("INSERT INTO rerun_probe VALUES (1, 0), (2, 0)")
    holding = threading.Barrier(2, timeout=30)
    calls: list[int] = []

    def writer(first: int, second: int) -> Callable[[Any], int]:
        def work(tx: Any) -> int:
            calls.append(first)
            execute(tx, f"UPDATE rerun_probe SET n = n + 1 WHERE id = {first}")
            if calls.count(first) == 1:  # only the first attempt waits for the other to hold its row
                holding.wait()
            execute(tx, f"UPDATE rerun_probe SET n = n + 1 WHERE id = {second}")
            return first

        return work

    assert await asyncio.gather(write(writer(1, 2)), write(writer(2, 1))) == [1, 2]
    with db.engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT n FROM rerun_probe ORDER BY id").scalars().all() == [2, 2]
    return calls


@pytest.fixture
def postgres_db(db: Database) -> Database:
    if db.is_sqlite:
        pytest.skip("SQLite writers never overlap (BEGIN IMMEDIATE): no deadlock to break")
    return db


async def test_a_deadlocked_session_write_is_run_again(postgres_db: Database) -> None:
    def execute(session: Session, sql: str) -> None:
        session.execute(text(sql))

    calls = await _deadlock(postgres_db, postgres_db.write, execute)
    assert len(calls) == 3, calls  # one writer ran twice


async def test_a_deadlocked_raw_write_is_run_again(postgres_db: Database) -> None:
    def execute(tx: RawTx, sql: str) -> None:
        tx.run(sql)

    calls = await _deadlock(postgres_db, postgres_db.write_raw, execute)
    assert len(calls) == 3, calls


def test_other_errors_are_not_rerun(db: Database) -> None:
    calls: list[int] = []

    def work(session: Session) -> None:
        calls.append(1)
        session.execute(text("CREATE TABLE IF NOT EXISTS rerun_unique (id INT PRIMARY KEY)"))
        session.execute(text("INSERT INTO rerun_unique VALUES (1), (1)"))

    with pytest.raises(IntegrityError):
        db.write_sync(work)
    assert calls == [1]
