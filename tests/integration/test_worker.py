"""The job worker: running handlers, retries, graceful stop, lease loss, and real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from cargobay.db.engine import Database
from cargobay.db.models import Job
from cargobay.jobs import queue
from cargobay.jobs.queue import ClaimedJob, JobQueue, PermanentJobError
from cargobay.worker import Handler, JobRunner
from tests.support.job_worker import WorkerProcess
from tests.support.server import CARGOBAY, wait_for


def _job(db: Database, job_id: int) -> Job:
    return db.read_sync(lambda s: s.get(Job, job_id))


def _enqueue(db: Database, kind: str, payload: dict[str, Any] | None = None, **options: Any) -> int:
    return db.write_sync(lambda s: queue.enqueue(s, kind, payload, **options)).id


def _runner(db: Database, handlers: dict[str, Handler], **options: Any) -> JobRunner:
    options.setdefault("poll_interval", 0.05)
    return JobRunner(JobQueue(db), handlers, worker_id="test-worker", **options)


async def _until(check: Callable[[], bool], within: float = 20) -> None:
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110 - polls database state, there is no event to await
            await asyncio.sleep(0.05)


# -- in-process runner -------------------------------------------------------------------------


async def test_runner_runs_a_job_and_keeps_its_result(db: Database) -> None:
    seen: list[dict[str, Any]] = []

    async def handler(job: ClaimedJob) -> dict[str, Any]:
        seen.append(job.payload)
        return {"ok": True}

    job_id = _enqueue(db, "test.ok", {"x": 1})
    assert await _runner(db, {"test.ok": handler}).run_until_idle() == 1
    row = _job(db, job_id)
    assert seen == [{"x": 1}] and row.status == "succeeded" and row.result == {"ok": True}


async def test_runner_retries_a_failing_job_with_its_error(db: Database) -> None:
    async def handler(job: ClaimedJob) -> None:
        raise ValueError("disk on fire")

    job_id = _enqueue(db, "test.bad")
    await _runner(db, {"test.bad": handler}).run_until_idle()
    row = _job(db, job_id)
    assert row.status == "queued" and row.attempts == 1
    assert row.last_error == "ValueError: disk on fire"
    assert row.run_at > row.created_at  # backed off


async def test_permanent_error_fails_the_job_at_once(db: Database) -> None:
    async def handler(job: ClaimedJob) -> None:
        raise PermanentJobError("no such registry")

    job_id = _enqueue(db, "test.bad")
    await _runner(db, {"test.bad": handler}).run_until_idle()
    assert _job(db, job_id).status == "failed"


async def test_runner_loop_picks_up_jobs_enqueued_later(db: Database) -> None:
    done: list[int] = []

    async def handler(job: ClaimedJob) -> None:
        done.append(job.id)

    stop = asyncio.Event()
    task = asyncio.create_task(_runner(db, {"test.ok": handler}, concurrency=3).run(stop))
    ids = [_enqueue(db, "test.ok") for _ in range(5)]
    await _until(lambda: len(done) == 5)
    stop.set()
    await asyncio.wait_for(task, 10)
    assert sorted(done) == ids


async def test_stop_lets_running_jobs_finish_within_the_grace(db: Database) -> None:
    async def handler(job: ClaimedJob) -> None:
        await asyncio.sleep(0.3)

    job_id = _enqueue(db, "test.slow")
    stop = asyncio.Event()
    task = asyncio.create_task(_runner(db, {"test.slow": handler}, grace=10).run(stop))
    await _until(lambda: _job(db, job_id).status == "running")
    stop.set()
    await asyncio.wait_for(task, 10)
    assert _job(db, job_id).status == "succeeded"


async def test_stop_releases_jobs_that_outlast_the_grace(db: Database) -> None:
    cancelled = asyncio.Event()

    async def handler(job: ClaimedJob) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job_id = _enqueue(db, "test.slow")
    stop = asyncio.Event()
    task = asyncio.create_task(_runner(db, {"test.slow": handler}, grace=0.1).run(stop))
    await _until(lambda: _job(db, job_id).status == "running")
    stop.set()
    await asyncio.wait_for(task, 10)
    row = _job(db, job_id)
    assert cancelled.is_set()
    assert row.status == "queued" and row.attempts == 0 and row.lease_owner is None


async def test_losing_the_lease_cancels_the_handler(db: Database) -> None:
    cancelled = asyncio.Event()

    async def handler(job: ClaimedJob) -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    job_id = _enqueue(db, "test.slow")
    stop = asyncio.Event()
    task = asyncio.create_task(_runner(db, {"test.slow": handler}, lease=1.5).run(stop))
    await _until(lambda: _job(db, job_id).status == "running")
    # Another worker takes the job over (as if this one had stalled past its lease).
    db.write_sync(lambda s: s.execute(update(Job).where(Job.id == job_id).values(lease_owner="thief")))
    await asyncio.wait_for(cancelled.wait(), 10)
    stop.set()
    await asyncio.wait_for(task, 10)
    row = _job(db, job_id)
    assert row.status == "running" and row.lease_owner == "thief"  # left to its new owner


async def test_long_job_keeps_its_lease_by_heartbeat(db: Database) -> None:
    async def handler(job: ClaimedJob) -> None:
        await asyncio.sleep(2.5)

    job_id = _enqueue(db, "test.slow")
    await _runner(db, {"test.slow": handler}, lease=1.0).run_until_idle()
    row = _job(db, job_id)
    assert row.status == "succeeded" and row.attempts == 1


# -- real worker processes ---------------------------------------------------------------------


@pytest.fixture
def start_worker(db_url: str, tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    started: list[WorkerProcess] = []

    def start(cli: bool = False, **settings: str) -> WorkerProcess:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOBAY_")}
        env.update(
            CARGOBAY_DATA_DIR=str(tmp_path / "data"),
            CARGOBAY_DATABASE_URL=db_url,
            CARGOBAY_JOB_POLL_SECONDS="0.1",
            CARGOBAY_LOG_LEVEL="info",
        )
        env.update({f"CARGOBAY_{k.upper()}": v for k, v in settings.items()})
        command = [CARGOBAY, "worker"] if cli else [sys.executable, "-m", "tests.support.job_worker"]
        worker = WorkerProcess(env, tmp_path / f"worker-{len(started)}.log", command)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.kill()


def _marker_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


@pytest.mark.slow
def test_cargobay_worker_stops_cleanly_on_sigterm(start_worker: Callable[..., WorkerProcess]) -> None:
    worker = start_worker(cli=True)
    wait_for(lambda: "worker_started" in worker.output(), what="worker start")
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()
    assert "worker_stopped" in worker.output()


@pytest.mark.slow
def test_sigterm_lets_a_short_job_finish(
    db: Database, start_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    job_id = _enqueue(db, "test.sleep", {"seconds": 1.5, "marker": str(marker)})
    worker = start_worker(job_grace_seconds="20")
    wait_for(lambda: bool(_marker_lines(marker)), what="job start")
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()
    assert _marker_lines(marker) == [f"start {worker.pid}", f"done {worker.pid}"]
    assert _job(db, job_id).status == "succeeded"


@pytest.mark.slow
def test_sigterm_releases_a_job_that_outlasts_the_grace(
    db: Database, start_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    job_id = _enqueue(db, "test.sleep", {"seconds": 120, "marker": str(marker)})
    worker = start_worker(job_grace_seconds="0.5")
    wait_for(lambda: bool(_marker_lines(marker)), what="job start")
    worker.signal(signal.SIGTERM)
    assert worker.wait(30) == 0, worker.output()
    row = _job(db, job_id)
    assert (row.status, row.attempts, row.lease_owner) == ("queued", 0, None)


@pytest.mark.slow
def test_job_survives_a_killed_worker(
    db: Database, start_worker: Callable[..., WorkerProcess], tmp_path: Path
) -> None:
    marker = tmp_path / "marker"
    job_id = _enqueue(db, "test.sleep", {"seconds": 2, "marker": str(marker)})
    doomed = start_worker(job_lease_seconds="2")
    wait_for(lambda: bool(_marker_lines(marker)), what="job start")
    doomed.signal(signal.SIGKILL)
    doomed.wait(10)
    survivor = start_worker(job_lease_seconds="2")
    wait_for(lambda: _job(db, job_id).status == "succeeded", timeout=60, what="job success")
    row = _job(db, job_id)
    assert row.attempts == 2 and row.result == {"pid": survivor.pid}
    assert row.last_error is not None and "expired" in row.last_error
    assert _marker_lines(marker) == [f"start {doomed.pid}", f"start {survivor.pid}", f"done {survivor.pid}"]
    assert _job(db, job_id).finished_at is not None
    assert timedelta(0) < row.finished_at - row.created_at < timedelta(seconds=60)
