"""The durable job queue on SQLite and PostgreSQL: claims, leases, retries, dedupe."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from cargobay.db.engine import Database
from cargobay.db.models import Job
from cargobay.jobs import queue
from cargobay.jobs.queue import Backoff, ClaimedJob

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)
KINDS = ["test.a", "test.b"]


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def _job(db: Database, job_id: int) -> Job:
    return db.read_sync(lambda s: s.get(Job, job_id))


def _enqueue(db: Database, kind: str = "test.a", **options: object) -> int:
    options.setdefault("now", T0)
    return db.write_sync(lambda s: queue.enqueue(s, kind, {"n": 1}, **options)).id  # type: ignore[arg-type]


def _claim(db: Database, worker: str = "w1", when: datetime = T0, limit: int = 1) -> list[ClaimedJob]:
    return db.write_sync(lambda s: queue.claim(s, worker, KINDS, LEASE, limit=limit, now=when))


# -- enqueue and claim -------------------------------------------------------------------------


def test_enqueued_job_is_claimed_with_a_lease(db: Database) -> None:
    job_id = _enqueue(db)
    [job] = _claim(db, when=at(1))
    assert (job.id, job.kind, job.payload, job.attempts, job.worker_id) == (
        job_id,
        "test.a",
        {"n": 1},
        1,
        "w1",
    )
    row = _job(db, job_id)
    assert row.status == "running" and row.lease_owner == "w1"
    assert row.lease_expires_at == at(31) and row.started_at == at(1)


def test_a_claimed_job_is_not_claimed_again(db: Database) -> None:
    _enqueue(db)
    assert len(_claim(db, "w1")) == 1
    assert _claim(db, "w2", when=at(10)) == []


def test_a_job_is_not_claimed_before_run_at(db: Database) -> None:
    _enqueue(db, run_at=at(60))
    assert _claim(db, when=at(59)) == []
    assert db.read_sync(queue.due, KINDS, at(59)) is False
    assert db.read_sync(queue.due, KINDS, at(60)) is True
    assert len(_claim(db, when=at(60))) == 1


def test_claims_take_only_the_asked_kinds(db: Database) -> None:
    _enqueue(db, "other.kind")
    assert _claim(db) == []
    assert db.write_sync(lambda s: queue.claim(s, "w", ["other.kind"], LEASE, now=T0))[0].kind == "other.kind"


def test_claims_take_the_oldest_due_jobs_first(db: Database) -> None:
    late = _enqueue(db, run_at=at(5))
    early = _enqueue(db, run_at=at(1))
    middle = _enqueue(db, run_at=at(3))
    assert [j.id for j in _claim(db, when=at(10), limit=2)] == [early, middle]
    assert [j.id for j in _claim(db, when=at(10), limit=5)] == [late]


def test_complete_records_success_and_result(db: Database) -> None:
    job_id = _enqueue(db)
    [job] = _claim(db)
    assert db.write_sync(lambda s: queue.complete(s, job, {"expired": 3}, now=at(2)))
    row = _job(db, job_id)
    assert row.status == "succeeded" and row.result == {"expired": 3} and row.finished_at == at(2)
    assert row.lease_owner is None and row.lease_expires_at is None
    assert _claim(db, when=at(100)) == []


# -- failure, retry, backoff -------------------------------------------------------------------


def test_failed_attempt_is_retried_after_a_backoff(db: Database) -> None:
    job_id = _enqueue(db)
    [job] = _claim(db)
    status = db.write_sync(lambda s: queue.fail(s, job, "boom", backoff=Backoff(base=10), now=at(1)))
    assert status == "queued"
    row = _job(db, job_id)
    assert row.last_error == "boom" and row.run_at == at(11) and row.lease_owner is None
    assert _claim(db, when=at(10.9)) == []
    [again] = _claim(db, when=at(11))
    assert again.attempts == 2


def test_backoff_grows_exponentially_up_to_a_cap() -> None:
    backoff = Backoff(base=5, factor=2, cap=60)
    assert [backoff.delay(n).total_seconds() for n in range(1, 7)] == [5, 10, 20, 40, 60, 60]


def test_job_fails_for_good_after_max_attempts(db: Database) -> None:
    job_id = _enqueue(db, max_attempts=3)
    now = T0
    statuses = []
    for _ in range(3):
        [job] = _claim(db, when=now)
        statuses.append(db.write_sync(lambda s, j=job, t=now: queue.fail(s, j, f"try {j.attempts}", now=t)))
        now += timedelta(hours=2)
    assert statuses == ["queued", "queued", "failed"]
    row = _job(db, job_id)
    assert row.status == "failed" and row.attempts == 3 and row.last_error == "try 3"
    assert row.finished_at is not None
    assert _claim(db, when=now + timedelta(days=1)) == []


def test_permanent_failure_is_not_retried(db: Database) -> None:
    job_id = _enqueue(db)
    [job] = _claim(db)
    assert db.write_sync(lambda s: queue.fail(s, job, "bad payload", retry=False, now=at(1))) == "failed"
    assert _job(db, job_id).attempts == 1


# -- leases ------------------------------------------------------------------------------------


def test_expired_lease_makes_the_job_claimable_again(db: Database) -> None:
    job_id = _enqueue(db)
    [first] = _claim(db, "dead-worker")
    assert _claim(db, "w2", when=at(29)) == []
    [second] = _claim(db, "w2", when=at(30))
    assert second.id == job_id and second.attempts == 2 and second.worker_id == "w2"
    assert _job(db, job_id).last_error == "lease of dead-worker expired"
    # The first worker comes back too late: its settling is refused.
    assert not db.write_sync(lambda s: queue.complete(s, first, now=at(31)))
    assert db.write_sync(lambda s: queue.fail(s, first, "late", now=at(31))) is None
    assert db.write_sync(lambda s: queue.complete(s, second, now=at(31)))
    assert _job(db, job_id).status == "succeeded"


def test_heartbeat_extends_the_lease(db: Database) -> None:
    job_id = _enqueue(db)
    [job] = _claim(db)
    assert db.write_sync(lambda s: queue.heartbeat(s, job, LEASE, now=at(25)))
    assert _job(db, job_id).lease_expires_at == at(55)
    assert _claim(db, "w2", when=at(40)) == []
    assert len(_claim(db, "w2", when=at(55))) == 1


def test_heartbeat_after_takeover_reports_the_lease_lost(db: Database) -> None:
    _enqueue(db)
    [job] = _claim(db, "slow")
    _claim(db, "w2", when=at(31))
    assert not db.write_sync(lambda s: queue.heartbeat(s, job, LEASE, now=at(32)))


def test_lease_running_out_on_the_last_attempt_fails_the_job(db: Database) -> None:
    job_id = _enqueue(db, max_attempts=2)
    _claim(db, "crash-1")
    _claim(db, "crash-2", when=at(30))
    assert _claim(db, "w3", when=at(60)) == []
    row = _job(db, job_id)
    assert row.status == "failed" and row.attempts == 2
    assert row.last_error == "lease of crash-2 expired on its last attempt"


def test_release_gives_the_job_back_without_counting_the_attempt(db: Database) -> None:
    job_id = _enqueue(db)
    [job] = _claim(db, "stopping")
    assert db.write_sync(lambda s: queue.release(s, job, now=at(2)))
    row = _job(db, job_id)
    assert row.status == "queued" and row.attempts == 0 and row.run_at == at(2) and row.lease_owner is None
    [again] = _claim(db, "w2", when=at(2))
    assert again.attempts == 1


# -- dedupe ------------------------------------------------------------------------------------


def test_dedupe_key_returns_the_pending_job(db: Database) -> None:
    first = db.write_sync(lambda s: queue.enqueue(s, "test.a", dedupe_key="scan:1", now=T0))
    second = db.write_sync(lambda s: queue.enqueue(s, "test.a", dedupe_key="scan:1", now=T0))
    assert first.created and not second.created and second.id == first.id
    [job] = _claim(db)
    third = db.write_sync(lambda s: queue.enqueue(s, "test.a", dedupe_key="scan:1", now=T0))
    assert third.id == job.id and not third.created  # still running: still deduplicated


def test_finished_job_gives_its_key_to_the_next_enqueue(db: Database) -> None:
    first = db.write_sync(lambda s: queue.enqueue(s, "test.a", dedupe_key="scan:1", now=T0))
    [job] = _claim(db)
    db.write_sync(lambda s: queue.complete(s, job, now=at(1)))
    again = db.write_sync(lambda s: queue.enqueue(s, "test.a", dedupe_key="scan:1", now=at(2)))
    assert again.created and again.id != first.id
    assert _job(db, first.id).dedupe_key is None  # rotated off the finished row
    assert _job(db, again.id).dedupe_key == "scan:1"


def test_once_keys_are_not_reused_after_the_job_finished(db: Database) -> None:
    first = db.write_sync(lambda s: queue.enqueue(s, "test.a", dedupe_key="p@1", once=True, now=T0))
    [job] = _claim(db)
    db.write_sync(lambda s: queue.complete(s, job, now=at(1)))
    again = db.write_sync(lambda s: queue.enqueue(s, "test.a", dedupe_key="p@1", once=True, now=at(2)))
    assert not again.created and again.id == first.id


def test_concurrent_enqueues_of_one_key_make_one_job(db: Database) -> None:
    ids: list[int] = []
    barrier = threading.Barrier(1 if db.is_sqlite else 6)

    def run() -> None:
        def work(session):  # type: ignore[no-untyped-def]
            barrier.wait()
            return queue.enqueue(session, "test.a", dedupe_key="once-please").id

        ids.append(db.write_sync(work))

    threads = [threading.Thread(target=run) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 6 and len(set(ids)) == 1
    assert db.read_sync(lambda s: s.scalar(select(func.count()).select_from(Job))) == 1


# -- housekeeping ------------------------------------------------------------------------------


def test_prune_deletes_old_finished_jobs_only(db: Database) -> None:
    done_old, done_new, failed_old, pending = (_enqueue(db) for _ in range(4))
    jobs = {j.id: j for j in _claim(db, limit=4)}
    db.write_sync(lambda s: queue.complete(s, jobs[done_old], now=T0))
    db.write_sync(lambda s: queue.complete(s, jobs[done_new], now=at(86400)))
    db.write_sync(lambda s: queue.fail(s, jobs[failed_old], "x", retry=False, now=T0))
    deleted = db.write_sync(lambda s: queue.prune(s, now=at(86400 + 60)))
    assert deleted == 1
    remaining = set(db.read_sync(lambda s: list(s.scalars(select(Job.id)))))
    assert remaining == {done_new, failed_old, pending}
