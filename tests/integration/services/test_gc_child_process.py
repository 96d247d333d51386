"""Collections that ``serve`` runs in a child process (``worker.run_in_child_process``): the child
does the run on the same installation and answers its report; its failures and crashes fail the job
with the reason; a job cancelled (lease lost, server stopping) stops the child, which records its run
as failed."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from cargobay import worker
from cargobay.db.engine import Database
from cargobay.db.models import GcOrphan, GcRun
from cargobay.faults import EXIT_CODE
from cargobay.jobs import queue
from cargobay.jobs.queue import ClaimedJob, JobQueue
from cargobay.runtime import Runtime
from cargobay.services.gc import KIND
from cargobay.worker import JobProcessFailed, build_jobs, in_child_processes, run_in_child_process
from tests.support.gc import age_reviews, blob_digests, make_runtime, upload

on_sqlite = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)


@pytest.fixture
def rt(db: Database, db_url: str, tmp_path: Path) -> Runtime:
    return make_runtime(db, db_url, tmp_path, encryption=False)


async def claim(db: Database, payload: dict[str, object]) -> ClaimedJob:
    db.write_sync(queue.enqueue, KIND, payload)
    (job,) = await JobQueue(db).claim("test", [KIND], timedelta(minutes=1), 1)
    return job


def _files(rt: Runtime) -> list[Path]:
    return [p for p in (rt.settings.data_dir / "storage" / "objects").rglob("*") if p.is_file()]


def _children(module: str) -> list[int]:
    """Our child processes running ``python -m module``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and module.encode() in command:
            found.append(int(entry.name))
    return found


def runs(db: Database, registry_id: str) -> list[tuple[str, str | None]]:
    return list(
        db.read_sync(
            lambda s: s.execute(
                select(GcRun.state, GcRun.error).where(GcRun.registry_id == registry_id)
            ).all()
        )
    )


@on_sqlite
async def test_a_collection_runs_in_a_child_process_and_answers_its_report(
    rt: Runtime, db: Database, registry_id: str
) -> None:
    garbage = await upload(rt, registry_id, "app", b"a blob nothing references")
    age_reviews(db, timedelta(days=2))
    job = await claim(db, {"registry_id": registry_id})

    report = await run_in_child_process(rt.settings, job)

    assert report is not None and report["blobs_freed"] == 1 and report["bytes_freed"] == garbage["size"]
    assert blob_digests(db, registry_id) == set()
    assert runs(db, registry_id) == [("succeeded", None)]


@on_sqlite
async def test_serve_hands_only_the_collection_kinds_to_child_processes(rt: Runtime) -> None:
    jobs = build_jobs(rt)
    isolated = in_child_processes(rt.settings, jobs)
    assert set(isolated.handlers) == set(jobs.handlers)
    moved = {kind for kind in jobs.handlers if isolated.handlers[kind] is not jobs.handlers[kind]}
    assert moved == worker.CHILD_PROCESS_KINDS == {KIND, "gc.deletions", "gc.sweep"}
    assert isolated.periodic == jobs.periodic and isolated.weekly == jobs.weekly


@on_sqlite
async def test_a_failing_job_fails_with_the_childs_reason(
    rt: Runtime, db: Database, registry_id: str
) -> None:
    job = await claim(db, {"not": "a registry"})
    with pytest.raises(JobProcessFailed, match="KeyError: 'registry_id'"):
        await run_in_child_process(rt.settings, job)


@on_sqlite
async def test_a_child_that_dies_fails_the_job_and_the_server_lives_on(
    rt: Runtime, db: Database, registry_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    await upload(rt, registry_id, "app", b"garbage")
    age_reviews(db, timedelta(days=2))
    job = await claim(db, {"registry_id": registry_id})
    monkeypatch.setenv("CARGOBAY_CRASH_AT", "gc.rows_deleted")  # the child inherits it; os._exit there

    with pytest.raises(JobProcessFailed, match=f"ended with status {EXIT_CODE} and no answer"):
        await run_in_child_process(rt.settings, job)

    assert runs(db, registry_id) == [("running", None)]  # as a power cut leaves it: taken over later
    monkeypatch.delenv("CARGOBAY_CRASH_AT")
    report = await run_in_child_process(rt.settings, job)  # the retry continues the same run
    # The crash came after the rows' commit: the retry deletes the bytes the outbox still names.
    assert report is not None and report["objects_deleted"] == 1
    assert blob_digests(db, registry_id) == set() and not _files(rt)
    assert runs(db, registry_id) == [("succeeded", None)]


@on_sqlite
async def test_a_cancelled_job_stops_its_child_which_records_the_run_failed(
    db: Database, db_url: str, tmp_path: Path, registry_id: str
) -> None:
    # The sweep lists one object and then waits ~1,000 s for its pace: the run is still going.
    rt = make_runtime(db, db_url, tmp_path, encryption=False, gc_sweep_keys_per_second=0.001)
    leftover = tmp_path / "storage" / "objects" / registry_id / "blobs" / "ab" / "ab-left-by-a-crash"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"no row names this")
    job = await claim(db, {"registry_id": registry_id})
    running = asyncio.ensure_future(run_in_child_process(rt.settings, job))
    deadline = time.monotonic() + 60
    while not db.read_sync(lambda s: s.scalar(select(GcOrphan.object_key))):  # the sweep has seen it
        assert time.monotonic() < deadline and not running.done(), "the run never reached its sweep"
        await asyncio.sleep(0.1)

    (child,) = _children("cargobay.job_process")
    assert os.getsid(child) != os.getsid(0)  # its own session: a signal to the server's group misses it
    started = time.monotonic()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert time.monotonic() - started < worker.CHILD_STOP_SECONDS
    ((state, error),) = runs(db, registry_id)
    assert state == "failed" and error is not None and "Cancelled" in error


async def test_a_child_that_ignores_the_end_of_its_input_is_killed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "CHILD_STOP_SECONDS", 0.5)
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "import time; time.sleep(60)", stdin=asyncio.subprocess.PIPE
    )
    await worker._stop_child(child)
    assert child.returncode is not None and child.returncode < 0  # killed
    with pytest.raises(ProcessLookupError):
        os.kill(child.pid, 0)
