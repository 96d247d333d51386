"""Jobs that must not run at once (concurrency keys), per-registry weekly windows, and services
enqueueing in their own transaction; on SQLite and PostgreSQL."""

from __future__ import annotations

import itertools
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from cargobay.db.engine import Database
from cargobay.db.models import Job, Registry
from cargobay.jobs import queue
from cargobay.jobs.scheduler import NO_WINDOW, Periodic, Scheduler, Weekly

T0 = datetime(2030, 1, 2, 12, 0, tzinfo=UTC)  # a Wednesday
LEASE = timedelta(seconds=30)
GC = Weekly("test.gc")


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _claim(db: Database, kinds: list[str], when: datetime, worker: str = "w", limit: int = 5) -> list[int]:
    return [
        j.id for j in db.write_sync(lambda s: queue.claim(s, worker, kinds, LEASE, limit=limit, now=when))
    ]


def _enqueue(db: Database, kind: str, key: str | None, when: datetime = T0) -> int:
    return db.write_sync(lambda s: queue.enqueue(s, kind, concurrency_key=key, now=when)).id


# -- concurrency keys ---------------------------------------------------------------------------


def test_a_claim_takes_one_job_per_key(db: Database) -> None:
    first = _enqueue(db, "test.k", "gc:r1")
    _enqueue(db, "test.k", "gc:r1")
    other = _enqueue(db, "test.k", "gc:r2")
    free = _enqueue(db, "test.k", None)
    assert set(_claim(db, ["test.k"], at(1))) == {first, other, free}


def test_a_keyed_job_waits_while_another_of_its_key_runs(db: Database) -> None:
    first = _enqueue(db, "test.k", "gc:r1")
    second = _enqueue(db, "test.k", "gc:r1")
    [running] = db.write_sync(lambda s: queue.claim(s, "w", ["test.k"], LEASE, limit=1, now=at(1)))
    assert running.id == first
    assert _claim(db, ["test.k"], at(2)) == []
    assert db.write_sync(lambda s: queue.complete(s, running, now=at(3)))
    assert _claim(db, ["test.k"], at(4)) == [second]


def test_a_dead_holder_frees_its_key_when_its_lease_runs_out(db: Database) -> None:
    first = _enqueue(db, "test.k", "gc:r1")
    _enqueue(db, "test.k", "gc:r1", when=at(1))
    assert _claim(db, ["test.k"], at(1), limit=1) == [first]
    assert _claim(db, ["test.k"], at(20)) == []
    # The holder died: past its lease the oldest job of the key (the dead one) is taken over, alone.
    assert _claim(db, ["test.k"], at(40), worker="w2") == [first]
    assert _claim(db, ["test.k"], at(41), worker="w3") == []


def test_periodic_jobs_of_one_kind_never_run_together(db: Database) -> None:
    """After a restart, the released job of the last period and the new period's job are both due;
    they run one after the other, never at once (they share the kind's concurrency key)."""
    scheduler = Scheduler(db, [Periodic("test.expire", every=300)])
    scheduler.tick(T0)
    scheduler.tick(at(300))
    assert len(_claim(db, ["test.expire"], at(301), limit=2)) == 1


def test_keyed_claimers_in_threads_never_hold_a_key_together(db: Database, db_url: str) -> None:
    keys = [f"gc:r{i}" for i in range(3)]

    def fill(session):  # type: ignore[no-untyped-def]
        for i in range(30):
            queue.enqueue(session, "test.k", concurrency_key=keys[i % 3])

    db.write_sync(fill)
    spans: list[tuple[str, float, float]] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def claimer(name: str) -> None:
        own = Database(db_url)
        start.wait(30)
        try:
            while jobs := own.write_sync(lambda s: queue.claim(s, name, ["test.k"], LEASE, limit=2)):
                for job in jobs:
                    key = own.read_sync(lambda s, i=job.id: s.get(Job, i).concurrency_key)
                    began = time.monotonic()
                    time.sleep(0.005)
                    ended = time.monotonic()
                    assert own.write_sync(queue.complete, job)
                    with lock:
                        spans.append((key, began, ended))
        finally:
            own.dispose()

    threads = [threading.Thread(target=claimer, args=(f"t{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(spans) == 30
    for key in keys:
        mine = sorted((b, e) for k, b, e in spans if k == key)
        assert all(prev_end <= begin for (_, prev_end), (begin, _) in itertools.pairwise(mine))


# -- weekly windows ---------------------------------------------------------------------------


def _schedule(
    db: Database, registry_id: str, days: list[str], time_of_day: str, since: datetime | None
) -> None:
    db.write_sync(
        lambda s: s.execute(
            update(Registry)
            .where(Registry.id == registry_id)
            .values(gc_days=days, gc_time=time_of_day, gc_schedule_since=since, gc_next_window_at=None)
        )
    )


def _gc_jobs(db: Database) -> list[tuple[str | None, dict[str, str], datetime, str | None]]:
    return db.read_sync(
        lambda s: [
            (r.dedupe_key, r.payload, r.run_at, r.concurrency_key)
            for r in s.execute(select(Job).where(Job.kind == "test.gc").order_by(Job.id)).scalars()
        ]
    )


def test_a_window_gets_one_job_when_it_comes(db: Database, registry_id: str) -> None:
    _schedule(db, registry_id, ["Thursday"], "01:30:00Z", since=T0)
    scheduler = Scheduler(db, [], weekly=[GC])
    thursday = datetime(2030, 1, 3, 1, 30, tzinfo=UTC)
    assert scheduler.tick(T0) == []
    assert scheduler.tick(thursday - timedelta(seconds=1)) == []
    assert len(scheduler.tick(thursday)) == 1
    assert scheduler.tick(thursday + timedelta(minutes=5)) == []
    [(key, payload, run_at, concurrency)] = _gc_jobs(db)
    assert key == f"test.gc:{registry_id}@2030-01-03T01:30:00Z"
    assert payload == {"registry_id": registry_id, "window": thursday.isoformat()} and run_at == thursday
    assert concurrency == f"test.gc:{registry_id}"
    next_at = db.read_sync(lambda s: s.get(Registry, registry_id).gc_next_window_at)
    assert next_at == thursday + timedelta(days=7)


def test_a_window_missed_while_down_runs_at_the_next_start_once(db: Database, registry_id: str) -> None:
    _schedule(db, registry_id, ["Monday", "Thursday"], "02:00:00+00:00", since=T0)
    Scheduler(db, [], weekly=[GC]).tick(T0)  # worked out: the next window is Thursday 02:00
    restarted = datetime(2030, 1, 9, 9, 0, tzinfo=UTC)  # down from Wednesday to the next Wednesday
    assert len(Scheduler(db, [], weekly=[GC]).tick(restarted)) == 1
    assert Scheduler(db, [], weekly=[GC]).tick(restarted + timedelta(minutes=1)) == []
    [(_, _, run_at, _)] = _gc_jobs(db)
    assert run_at == datetime(2030, 1, 3, 2, 0, tzinfo=UTC)  # Thursday's and Monday's: one run
    next_at = db.read_sync(lambda s: s.get(Registry, registry_id).gc_next_window_at)
    assert next_at == datetime(2030, 1, 10, 2, 0, tzinfo=UTC)


def test_windows_before_the_schedule_was_set_do_not_count(db: Database, registry_id: str) -> None:
    set_at = datetime(2030, 1, 3, 3, 0, tzinfo=UTC)  # Thursday, an hour after its window
    _schedule(db, registry_id, ["Thursday"], "02:00:00Z", since=set_at)
    assert Scheduler(db, [], weekly=[GC]).tick(set_at + timedelta(minutes=1)) == []
    assert _gc_jobs(db) == []


def test_a_schedule_without_days_never_runs(db: Database, registry_id: str) -> None:
    _schedule(db, registry_id, [], "01:23:00+00:00", since=T0)
    scheduler = Scheduler(db, [], weekly=[GC])
    assert scheduler.tick(T0 + timedelta(days=8)) == []
    assert db.read_sync(lambda s: s.get(Registry, registry_id).gc_next_window_at) == NO_WINDOW
    assert scheduler.tick(T0 + timedelta(days=16)) == []


def test_two_schedulers_enqueue_a_window_once(db: Database, db_url: str, registry_id: str) -> None:
    _schedule(db, registry_id, ["Thursday"], "01:00:00Z", since=T0)
    Scheduler(db, [], weekly=[GC]).tick(T0)
    other = Database(db_url)
    try:
        schedulers = [Scheduler(db, [], weekly=[GC]), Scheduler(other, [], weekly=[GC])]
        when = datetime(2030, 1, 3, 1, 0, 1, tzinfo=UTC)
        gate = threading.Barrier(2)
        created: list[int] = []

        def tick(scheduler: Scheduler) -> None:
            gate.wait()
            created.extend(scheduler.tick(when))

        threads = [threading.Thread(target=tick, args=(s,)) for s in schedulers]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        other.dispose()
    assert len(created) == 1 and len(_gc_jobs(db)) == 1


# -- the job hook -----------------------------------------------------------------------------


def test_a_job_enqueued_in_a_failing_unit_of_work_is_dropped_with_it(db: Database) -> None:
    """A service enqueues background work in its own transaction: both land, or neither does."""

    def change_then_fail(session):  # type: ignore[no-untyped-def]
        queue.enqueue(session, "test.follow-up", {"for": "change"})
        raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        db.write_sync(change_then_fail)
    assert db.read_sync(lambda s: s.scalar(select(Job.id).where(Job.kind == "test.follow-up"))) is None
    db.write_sync(lambda s: queue.enqueue(s, "test.follow-up", {"for": "change"}))
    assert db.read_sync(lambda s: s.scalar(select(Job.id).where(Job.kind == "test.follow-up"))) is not None
