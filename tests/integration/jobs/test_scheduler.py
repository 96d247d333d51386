"""Periodic jobs: one job per kind and period, however many schedulers tick."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from cargobay.db.engine import Database
from cargobay.db.models import Job
from cargobay.jobs import queue
from cargobay.jobs.scheduler import Periodic, Scheduler

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)  # a multiple of 300 s since the epoch
EVERY_5_MIN = Periodic("test.expire", every=300)
HOURLY = Periodic("test.prune", every=3600, payload={"keep": "1d"})


def _jobs(db: Database) -> list[tuple[str, str | None, datetime]]:
    return db.read_sync(
        lambda s: [tuple(r) for r in s.execute(select(Job.kind, Job.dedupe_key, Job.run_at).order_by(Job.id))]
    )


def test_bucket_key_names_the_kind_and_period() -> None:
    key, start = EVERY_5_MIN.bucket(T0 + timedelta(seconds=299))
    assert key == f"test.expire@{int(T0.timestamp()) // 300}" and start == T0
    assert EVERY_5_MIN.bucket(T0 + timedelta(seconds=300))[1] == T0 + timedelta(seconds=300)


def test_tick_enqueues_each_kind_once_per_period(db: Database) -> None:
    scheduler = Scheduler(db, [EVERY_5_MIN, HOURLY])
    assert len(scheduler.tick(T0 + timedelta(seconds=10))) == 2
    assert scheduler.tick(T0 + timedelta(seconds=20)) == []
    jobs = _jobs(db)
    assert [(kind, run_at) for kind, _, run_at in jobs] == [("test.expire", T0), ("test.prune", T0)]
    payload = db.read_sync(lambda s: s.scalar(select(Job.payload).where(Job.kind == "test.prune")))
    assert payload == {"keep": "1d"}


def test_next_period_gets_a_new_job(db: Database) -> None:
    scheduler = Scheduler(db, [EVERY_5_MIN])
    scheduler.tick(T0)
    assert len(scheduler.tick(T0 + timedelta(seconds=300))) == 1
    assert [run_at for _, _, run_at in _jobs(db)] == [T0, T0 + timedelta(seconds=300)]


def test_finished_period_is_not_enqueued_again(db: Database) -> None:
    scheduler = Scheduler(db, [EVERY_5_MIN])
    scheduler.tick(T0)
    [job] = db.write_sync(lambda s: queue.claim(s, "w", ["test.expire"], timedelta(seconds=30), now=T0))
    db.write_sync(lambda s: queue.complete(s, job, now=T0 + timedelta(seconds=1)))
    assert scheduler.tick(T0 + timedelta(seconds=2)) == []
    assert len(_jobs(db)) == 1


def test_missed_periods_are_coalesced_into_the_current_one(db: Database) -> None:
    scheduler = Scheduler(db, [EVERY_5_MIN])
    scheduler.tick(T0)
    scheduler.tick(T0 + timedelta(hours=3, seconds=7))
    assert [run_at for _, _, run_at in _jobs(db)] == [T0, T0 + timedelta(hours=3)]


def test_two_schedulers_ticking_together_enqueue_once(db: Database, db_url: str) -> None:
    """Two processes' schedulers (two engines) tick the same periods at the same instants."""
    other = Database(db_url)
    try:
        schedulers = [Scheduler(db, [EVERY_5_MIN, HOURLY]), Scheduler(other, [EVERY_5_MIN, HOURLY])]
        created: list[int] = []
        for step in range(3):
            now = T0 + timedelta(seconds=300 * step + 1)
            barrier = threading.Barrier(2)

            def tick(scheduler: Scheduler, when: datetime = now, gate: threading.Barrier = barrier) -> None:
                gate.wait()
                created.extend(scheduler.tick(when))

            threads = [threading.Thread(target=tick, args=(s,)) for s in schedulers]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        keys = [key for _, key, _ in _jobs(db)]
        assert len(keys) == len(set(keys)) == len(created) == 4  # 3 periods of one kind, 1 of the other
    finally:
        other.dispose()


async def test_run_ticks_until_stopped(db: Database) -> None:
    scheduler = Scheduler(db, [Periodic("test.fast", every=0.2)], tick=0.05)
    stop = asyncio.Event()
    task = asyncio.create_task(scheduler.run(stop))
    await asyncio.sleep(0.7)
    stop.set()
    await asyncio.wait_for(task, 5)
    assert len(_jobs(db)) >= 2
