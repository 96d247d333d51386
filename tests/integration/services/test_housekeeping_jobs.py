"""The job kinds of Cargobay: token expiry, upload expiry and queue pruning, run through a worker."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cargobay.config import Settings
from cargobay.db.engine import Database
from cargobay.db.models import Job, Token, Upload
from cargobay.db.types import utcnow
from cargobay.jobs import queue
from cargobay.jobs.queue import JobQueue
from cargobay.runtime import Runtime, assemble
from cargobay.services.tokens import delete_expired_tokens
from cargobay.storage.filesystem import FilesystemStore
from cargobay.storage.sealing import PlainSealer
from cargobay.worker import JobRunner, build_jobs, upload_expiry_interval


def _token(registry_id: str, name: str, expiry_in: timedelta | None) -> Token:
    expiry = utcnow() + expiry_in if expiry_in is not None else None
    return Token(id=name, registry_id=registry_id, name=name, password_hash="h", expiry_date=expiry)


def test_expired_tokens_are_deleted_and_others_kept(db: Database, registry_id: str) -> None:
    def fill(session):  # type: ignore[no-untyped-def]
        session.add(_token(registry_id, "expired", timedelta(seconds=-1)))
        session.add(_token(registry_id, "valid", timedelta(days=1)))
        session.add(_token(registry_id, "forever", None))

    db.write_sync(fill)
    assert db.write_sync(delete_expired_tokens) == 1
    assert db.write_sync(delete_expired_tokens) == 0
    names = db.read_sync(lambda s: sorted(s.scalars(select(Token.name))))
    assert names == ["forever", "valid"]


def test_upload_expiry_interval_follows_the_setting() -> None:
    assert upload_expiry_interval(24 * 3600) == 300
    assert upload_expiry_interval(600) == 150
    assert upload_expiry_interval(1) == 1


@pytest.fixture
def runtime(db: Database, db_url: str, tmp_path: Path) -> Runtime:
    settings = Settings(data_dir=tmp_path, database_url=db_url, upload_expiry_seconds=60)
    return assemble(settings, db, FilesystemStore(tmp_path / "storage"), PlainSealer())


async def test_every_periodic_kind_has_a_handler(runtime: Runtime) -> None:
    jobs = build_jobs(runtime)
    assert {p.kind for p in jobs.periodic} <= set(jobs.handlers)
    assert {"uploads.expire", "tokens.expire", "jobs.prune"} <= set(jobs.handlers)


async def test_housekeeping_jobs_run_through_the_worker(runtime: Runtime, registry_id: str) -> None:
    db = runtime.db
    uploads = runtime.services.uploads
    stale = await uploads.start(registry_id, "app")
    fresh = await uploads.start(registry_id, "app")

    async def one_chunk():  # type: ignore[no-untyped-def]
        yield b"abc"

    await uploads.append(stale, one_chunk(), None, None)
    hour_ago = utcnow() - timedelta(hours=1)
    db.write_sync(lambda s: s.get(Upload, stale.id).__setattr__("updated_at", hour_ago))
    db.write_sync(lambda s: s.add(_token(registry_id, "old", timedelta(seconds=-5))))

    def old_finished_job(session):  # type: ignore[no-untyped-def]
        session.add(Job(kind="x", status="succeeded", finished_at=utcnow() - timedelta(days=3)))

    db.write_sync(old_finished_job)
    ids = {
        kind: db.write_sync(queue.enqueue, kind).id
        for kind in ("uploads.expire", "tokens.expire", "jobs.prune")
    }

    jobs = build_jobs(runtime)
    assert await JobRunner(JobQueue(db), jobs.handlers, concurrency=3).run_until_idle() == 3

    results = {kind: db.read_sync(lambda s, i=job_id: s.get(Job, i).result) for kind, job_id in ids.items()}
    assert results == {
        "uploads.expire": {"expired": 1},
        "tokens.expire": {"deleted": 1, "api_tokens_deleted": 0},
        "jobs.prune": {"deleted": 1},
    }
    remaining = db.read_sync(lambda s: set(s.scalars(select(Upload.id))))
    assert remaining == {fresh.id}
    assert isinstance(runtime.store, FilesystemStore)
    assert not runtime.store.staging_path(stale.final_key).exists()
