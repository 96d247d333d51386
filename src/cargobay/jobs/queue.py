"""The durable job queue, stored in the metadata database.

A job is claimed with a lease (``lease_owner`` + ``lease_expires_at``); the claimer extends the lease
while it works (``heartbeat``) and settles the job with ``complete``, ``fail`` or ``release``. A job
whose lease runs out (its process died) is claimable again, so every job runs at least once and
handlers must be idempotent. ``attempts`` counts claims; ``fail`` retries with exponential backoff
until ``max_attempts``, then the job stays ``failed`` with its ``last_error``.

Claims are exclusive: one ``UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING`` statement, whose
sub-select takes ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (concurrent claimers skip each other's
rows) and runs inside ``BEGIN IMMEDIATE`` on SQLite (one writer at a time). Settling is fenced by
(owner, attempts): a worker whose lease was taken over can no longer complete or fail the job.

Jobs sharing a ``concurrency_key`` never run at the same time: a job is claimable only while no job
of its key runs under a live lease, and a claim takes at most one job per key. On PostgreSQL a
claimer first takes a transaction-scoped advisory lock on each key it is about to claim (others skip
keys they cannot lock), so two claimers never both see a key free; SQLite has one writer anyway.

Functions take a ``Session`` so a service can enqueue in the same transaction as its own change
(a rollback drops the job with the change); ``JobQueue`` runs them as units of work for the worker.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, func, literal, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, aliased

from cargobay.db.engine import Database
from cargobay.db.models import Job
from cargobay.db.types import utcnow

QUEUED = "queued"
RUNNING = "running"
SUCCEEDED = "succeeded"
FAILED = "failed"
FINISHED = (SUCCEEDED, FAILED)

_MAX_ERROR = 4000


class PermanentJobError(Exception):
    """Raised by a handler when retrying cannot help: the job fails at once."""


@dataclass(frozen=True, slots=True)
class Enqueued:
    id: int
    created: bool  # False when a job with the same dedupe key was already there


@dataclass(frozen=True, slots=True)
class ClaimedJob:
    """A job held under lease by ``worker_id``; (``id``, ``worker_id``, ``attempts``) fence its settling."""

    id: int
    kind: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    worker_id: str


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delay before retry n (n = attempts so far): base * factor**(n-1), at most ``cap`` seconds."""

    base: float = 5.0
    factor: float = 2.0
    cap: float = 3600.0

    def delay(self, attempts: int) -> timedelta:
        return timedelta(seconds=min(self.cap, self.base * self.factor ** max(0, attempts - 1)))


def enqueue(
    session: Session,
    kind: str,
    payload: dict[str, Any] | None = None,
    *,
    run_at: datetime | None = None,
    dedupe_key: str | None = None,
    once: bool = False,
    concurrency_key: str | None = None,
    max_attempts: int = 5,
    now: datetime | None = None,
) -> Enqueued:
    """Add a job, due at ``run_at`` (default now).

    With a ``dedupe_key`` at most one job holds the key: while one is queued or running, enqueueing
    the same key returns it instead. A finished job gives its key up to the next enqueue (the key is
    rotated off it), unless ``once`` is set: then the key is never used twice while the finished row
    is kept, which is what periodic jobs keyed by time bucket need. Jobs with the same
    ``concurrency_key`` never run at once (see the module docstring).
    """
    now = now or utcnow()
    values: dict[str, Any] = {
        "kind": kind,
        "payload": payload or {},
        "dedupe_key": dedupe_key,
        "concurrency_key": concurrency_key,
        "status": QUEUED,
        "run_at": run_at or now,
        "attempts": 0,
        "max_attempts": max_attempts,
        "created_at": now,
    }
    if dedupe_key is None:
        job = Job(**values)
        session.add(job)
        session.flush()
        return Enqueued(job.id, True)
    if not once:
        session.execute(
            update(Job)
            .where(Job.dedupe_key == dedupe_key, Job.status.in_(FINISHED))
            .values(dedupe_key=None)
            .execution_options(synchronize_session=False)
        )
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    statement = (
        insert(Job).values(**values).on_conflict_do_nothing(index_elements=[Job.dedupe_key]).returning(Job.id)
    )
    new_id = session.execute(statement).scalar()
    if new_id is not None:
        return Enqueued(new_id, True)
    existing = session.scalar(select(Job.id).where(Job.dedupe_key == dedupe_key))
    if existing is None:  # pragma: no cover - the holder was deleted between the two statements
        raise RuntimeError(f"dedupe key {dedupe_key!r} conflicted but no job holds it")
    return Enqueued(existing, False)


def _claimable(kinds: Iterable[str], now: datetime) -> ColumnElement[bool]:
    return and_(
        Job.kind.in_(list(kinds)),
        or_(
            and_(Job.status == QUEUED, Job.run_at <= now),
            and_(Job.status == RUNNING, Job.lease_expires_at <= now),
        ),
        or_(Job.concurrency_key.is_(None), ~_key_busy(now)),
    )


def _key_busy(now: datetime) -> ColumnElement[bool]:
    """Another job of the same concurrency key runs under a live lease."""
    other = aliased(Job)
    return (
        select(other.id)
        .where(
            other.concurrency_key == Job.concurrency_key,
            other.id != Job.id,
            other.status == RUNNING,
            other.lease_expires_at > now,
        )
        .exists()
    )


def due(session: Session, kinds: Iterable[str], now: datetime | None = None) -> bool:
    """Whether a claim could find work: a cheap read that spares SQLite an idle write lock."""
    found = session.scalar(select(Job.id).where(_claimable(kinds, now or utcnow())).limit(1))
    return found is not None


def claim(
    session: Session,
    worker_id: str,
    kinds: Sequence[str],
    lease: timedelta,
    *,
    limit: int = 1,
    now: datetime | None = None,
) -> list[ClaimedJob]:
    """Take up to ``limit`` due jobs of ``kinds`` under a lease, oldest ``run_at`` first.

    Jobs whose lease ran out are taken over (their ``last_error`` says so); one whose lease ran out on
    its last attempt is failed instead, so a job that kills its worker cannot loop for ever.
    """
    if not kinds or limit < 1:
        return []
    now = now or utcnow()
    exhausted = (
        select(Job.id)
        .where(_claimable(kinds, now), Job.status == RUNNING, Job.attempts >= Job.max_attempts)
        .with_for_update(skip_locked=True)
    )
    session.execute(
        update(Job)
        .where(Job.id.in_(exhausted))
        .values(
            status=FAILED,
            finished_at=now,
            last_error=_lease_expired_message(" on its last attempt"),
            lease_owner=None,
            lease_expires_at=None,
        )
        .execution_options(synchronize_session=False)
    )
    candidates = session.execute(
        select(Job.id, Job.concurrency_key)
        .where(_claimable(kinds, now))
        .order_by(Job.run_at, Job.id)
        .limit(limit * 4)
        .with_for_update(skip_locked=True)
    ).all()
    chosen = _one_per_key(session, candidates, limit, now)
    if not chosen:
        return []
    rows = session.execute(
        update(Job)
        .where(Job.id.in_(chosen))
        .values(
            status=RUNNING,
            lease_owner=worker_id,
            lease_expires_at=now + lease,
            attempts=Job.attempts + 1,
            started_at=now,
            last_error=case((Job.status == RUNNING, _lease_expired_message("")), else_=Job.last_error),
        )
        .returning(Job.id, Job.kind, Job.payload, Job.attempts, Job.max_attempts, Job.run_at)
        .execution_options(synchronize_session=False)
    ).all()
    rows = sorted(rows, key=lambda r: (r.run_at, r.id))
    return [
        ClaimedJob(r.id, r.kind, dict(r.payload or {}), r.attempts, r.max_attempts, worker_id) for r in rows
    ]


def _one_per_key(session: Session, candidates: Sequence[Any], limit: int, now: datetime) -> list[int]:
    """Up to ``limit`` candidate ids, at most one per concurrency key, oldest first."""
    postgres = session.get_bind().dialect.name == "postgresql"
    chosen: list[int] = []
    keys: set[str] = set()
    for job_id, key in candidates:
        if len(chosen) >= limit:
            break
        if key is not None:
            if key in keys:
                continue
            if postgres and not _lock_key(session, key, job_id, now):
                continue
            keys.add(key)
        chosen.append(job_id)
    return chosen


def _lock_key(session: Session, key: str, job_id: int, now: datetime) -> bool:
    """Hold the key for this transaction, then look again: a claimer that committed the key's job
    before we got the lock is visible now (READ COMMITTED reads afresh per statement)."""
    if not session.execute(
        select(func.pg_try_advisory_xact_lock(func.hashtext("cargobay-job:" + key)))
    ).scalar():
        return False
    other = aliased(Job)
    busy = session.execute(
        select(other.id).where(
            other.concurrency_key == key,
            other.id != job_id,
            other.status == RUNNING,
            other.lease_expires_at > now,
        )
    ).first()
    return busy is None


def _lease_expired_message(suffix: str) -> ColumnElement[str]:
    return literal("lease of ") + func.coalesce(Job.lease_owner, "?") + literal(" expired" + suffix)


def _fenced(job: ClaimedJob) -> ColumnElement[bool]:
    return and_(
        Job.id == job.id,
        Job.status == RUNNING,
        Job.lease_owner == job.worker_id,
        Job.attempts == job.attempts,
    )


def _settle(session: Session, job: ClaimedJob, **values: Any) -> bool:
    result = session.execute(
        update(Job).where(_fenced(job)).values(**values).execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def heartbeat(session: Session, job: ClaimedJob, lease: timedelta, now: datetime | None = None) -> bool:
    """Extend the lease to ``now + lease``; False when the lease was lost (taken over or settled)."""
    return _settle(session, job, lease_expires_at=(now or utcnow()) + lease)


def complete(
    session: Session, job: ClaimedJob, result: dict[str, Any] | None = None, now: datetime | None = None
) -> bool:
    """Mark the job succeeded (keeping ``result``); False when the lease was lost meanwhile."""
    return _settle(
        session,
        job,
        status=SUCCEEDED,
        result=result,
        finished_at=now or utcnow(),
        lease_owner=None,
        lease_expires_at=None,
    )


def fail(
    session: Session,
    job: ClaimedJob,
    error: str,
    *,
    retry: bool = True,
    backoff: Backoff = Backoff(),
    now: datetime | None = None,
) -> str | None:
    """Record a failed attempt: queued again after a backoff, or failed for good once attempts are
    used up (or ``retry`` is False). Returns the new status, None when the lease was lost meanwhile."""
    now = now or utcnow()
    values: dict[str, Any] = {"last_error": error[:_MAX_ERROR], "lease_owner": None, "lease_expires_at": None}
    if retry and job.attempts < job.max_attempts:
        values.update(status=QUEUED, run_at=now + backoff.delay(job.attempts))
    else:
        values.update(status=FAILED, finished_at=now)
    return str(values["status"]) if _settle(session, job, **values) else None


def release(session: Session, job: ClaimedJob, now: datetime | None = None) -> bool:
    """Give an unfinished job back (its worker is stopping): due now, and the attempt is not counted."""
    return _settle(
        session,
        job,
        status=QUEUED,
        run_at=now or utcnow(),
        attempts=Job.attempts - 1,
        lease_owner=None,
        lease_expires_at=None,
    )


def prune(
    session: Session,
    *,
    succeeded_for: timedelta = timedelta(days=1),
    failed_for: timedelta = timedelta(days=14),
    now: datetime | None = None,
) -> int:
    """Delete finished jobs kept long enough (failed ones longer, for diagnosis)."""
    now = now or utcnow()
    result = session.execute(
        delete(Job)
        .where(
            or_(
                and_(Job.status == SUCCEEDED, Job.finished_at < now - succeeded_for),
                and_(Job.status == FAILED, Job.finished_at < now - failed_for),
            )
        )
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


class JobQueue:
    """The queue's operations as units of work on a ``Database`` (each its own transaction)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim(
        self, worker_id: str, kinds: Sequence[str], lease: timedelta, limit: int = 1
    ) -> list[ClaimedJob]:
        if not await self.db.read(due, kinds):
            return []
        return await self.db.write(lambda s: claim(s, worker_id, kinds, lease, limit=limit))

    async def heartbeat(self, job: ClaimedJob, lease: timedelta) -> bool:
        return await self.db.write(heartbeat, job, lease)

    async def complete(self, job: ClaimedJob, result: dict[str, Any] | None = None) -> bool:
        return await self.db.write(complete, job, result)

    async def fail(self, job: ClaimedJob, error: str, retry: bool = True) -> str | None:
        return await self.db.write(lambda s: fail(s, job, error, retry=retry))

    async def release(self, job: ClaimedJob) -> bool:
        return await self.db.write(release, job)
