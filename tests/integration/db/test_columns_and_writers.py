"""Column types, upload rows and concurrent writers behave alike on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from cargobay.db.engine import Database, RawTx
from cargobay.db.models import Job, Registry, Token, Upload
from cargobay.db.queries.registries import add_storage
from cargobay.db.types import utcnow


def test_datetimes_come_back_aware_in_utc(db: Database, registry_id: str) -> None:
    cest = timezone(timedelta(hours=2))
    written = datetime(2026, 7, 1, 14, 30, 15, 123456, tzinfo=cest)

    def write(session: Session) -> None:
        session.execute(update(Registry).where(Registry.id == registry_id).values(modified_at=written))

    db.write_sync(write)
    back = db.read_sync(lambda s: s.get(Registry, registry_id).modified_at)
    assert back == written
    assert back.tzinfo is UTC and back.hour == 12 and back.microsecond == 123456


def test_raw_statements_write_and_read_times_as_the_column_type_does(db: Database, registry_id: str) -> None:
    written = datetime(2026, 7, 1, 14, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))

    def write(session: Session) -> None:
        tx = RawTx.of(session)
        assert tx.timestamp(written) is tx.timestamp(written)  # bound once per transaction
        tx.run("UPDATE registries SET modified_at = ? WHERE id = ?", tx.timestamp(written), registry_id)

    db.write_sync(write)
    assert db.read_sync(lambda s: s.get(Registry, registry_id).modified_at) == written
    raw = db.read_sync(
        lambda s: RawTx.of(s).one("SELECT modified_at FROM registries WHERE id = ?", registry_id)
    )
    assert raw is not None
    back = RawTx.time(raw[0])
    assert back == written and back is not None and back.tzinfo is UTC
    assert RawTx.time(None) is None


def test_datetime_comparisons_use_utc(db: Database, registry_id: str) -> None:
    at = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    db.write_sync(lambda s: s.get(Registry, registry_id).__setattr__("modified_at", at))
    later_elsewhere = datetime(2026, 1, 1, 13, 30, tzinfo=timezone(timedelta(hours=2)))  # 11:30 UTC
    found = db.read_sync(
        lambda s: s.scalar(select(func.count()).where(Registry.modified_at > later_elsewhere))
    )
    assert found == 1


def test_json_columns_round_trip(db: Database, registry_id: str) -> None:
    scopes = [{"name": "team/*", "type": "repository", "actions": ["pull", "push"]}]
    payload = {"registry": registry_id, "nested": {"n": 1, "list": [1, "two", None, True]}, "ü": "ß"}

    def write(session: Session) -> int:
        session.add(Token(id="t1", registry_id=registry_id, name="ci", password_hash="h", scopes=scopes))
        job = Job(kind="test.kind", payload=payload)
        session.add(job)
        session.flush()
        return job.id

    job_id = db.write_sync(write)
    assert db.read_sync(lambda s: s.get(Token, "t1").scopes) == scopes
    job = db.read_sync(lambda s: s.get(Job, job_id))
    assert job.payload == payload
    assert job.result is None  # SQL NULL, not JSON null
    assert db.read_sync(lambda s: s.scalar(select(func.count()).where(Job.result.is_(None)))) == 1


def test_upload_rows_track_size_and_activity(db: Database, registry_id: str) -> None:
    created = utcnow()

    def start(session: Session) -> None:
        session.add(Upload(id="u-1", registry_id=registry_id, repository_name="a/b", object_key="k/u1"))

    db.write_sync(start)
    row = db.read_sync(lambda s: s.get(Upload, "u-1"))
    assert row.size == 0 and row.updated_at >= created - timedelta(seconds=1)
    later = created + timedelta(minutes=5)
    db.write_sync(
        lambda s: s.execute(update(Upload).where(Upload.id == "u-1").values(size=42, updated_at=later))
    )
    stale = db.read_sync(
        lambda s: list(s.scalars(select(Upload.id).where(Upload.updated_at < later - timedelta(seconds=1))))
    )
    assert stale == []
    assert db.read_sync(lambda s: s.get(Upload, "u-1").size) == 42


def test_deleting_a_registry_cascades_to_its_rows(db: Database, registry_id: str) -> None:
    def fill(session: Session) -> None:
        session.add(Upload(id="u-2", registry_id=registry_id, repository_name="a", object_key="k"))
        session.add(Token(id="t2", registry_id=registry_id, name="ci", password_hash="h"))

    db.write_sync(fill)
    db.write_sync(lambda s: s.delete(s.get(Registry, registry_id)))
    assert db.read_sync(lambda s: s.scalar(select(func.count()).select_from(Upload))) == 0
    assert db.read_sync(lambda s: s.scalar(select(func.count()).select_from(Token))) == 0


def test_concurrent_writers_all_commit(db: Database, registry_id: str) -> None:
    """Many threads writing at once: SQLite queues them (BEGIN IMMEDIATE), none fails as locked."""
    threads_n, writes = 8, 15
    errors: list[BaseException] = []

    def run() -> None:
        for _ in range(writes):
            try:
                db.write_sync(lambda s: add_storage(RawTx.of(s), registry_id, 1))
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert db.read_sync(lambda s: s.get(Registry, registry_id).storage_bytes) == threads_n * writes


def test_a_slow_writer_delays_but_does_not_fail_another(db: Database, registry_id: str) -> None:
    """A write transaction held open for a while: the second writer waits for it, then commits."""
    inside = threading.Event()
    order: list[str] = []

    def slow(session: Session) -> None:
        add_storage(RawTx.of(session), registry_id, 10)
        inside.set()
        threading.Event().wait(0.5)
        order.append("slow")

    def quick(session: Session) -> None:
        add_storage(RawTx.of(session), registry_id, 1)
        order.append("quick")

    first = threading.Thread(target=db.write_sync, args=(slow,))
    first.start()
    inside.wait(5)
    db.write_sync(quick)
    first.join()
    assert order == ["slow", "quick"]
    assert db.read_sync(lambda s: s.get(Registry, registry_id).storage_bytes) == 11


def test_readers_are_not_blocked_by_an_open_writer(db: Database, registry_id: str) -> None:
    inside = threading.Event()
    release = threading.Event()

    def hold(session: Session) -> None:
        add_storage(RawTx.of(session), registry_id, 5)
        inside.set()
        release.wait(5)

    writer = threading.Thread(target=db.write_sync, args=(hold,))
    writer.start()
    inside.wait(5)
    try:
        # The reader sees the last committed state while the writer is still open.
        assert db.read_sync(lambda s: s.get(Registry, registry_id).storage_bytes) == 0
    finally:
        release.set()
        writer.join()
    assert db.read_sync(lambda s: s.get(Registry, registry_id).storage_bytes) == 5


async def test_raw_reads_leave_no_transaction_open(db: Database, registry_id: str) -> None:
    """The hot-path reads bypass the ORM; the connection must still go back to the pool clean."""
    for _ in range(3):
        row = await db.fetch_one("SELECT name FROM registries WHERE id = ?", registry_id)
        assert row is not None
    assert await db.fetch_all("SELECT name FROM registries WHERE id = ?", "no such id") == []
    if db.is_sqlite:  # one inline connection, in autocommit for reads
        return
    idle_in_transaction = db.read_sync(
        lambda s: s.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND state = 'idle in transaction'"
            )
        ).scalar_one()
    )
    assert idle_in_transaction == 0
