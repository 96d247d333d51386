"""The job worker: claims jobs from the durable queue and runs their handlers, which call services.

It runs as ``cargobay worker`` and, unless ``CARGOBAY_IN_PROCESS_JOBS=false``, inside every ``serve``
process too; claims are exclusive, so any number of them may run. Each also runs the scheduler of
periodic jobs, which is idempotent across processes. A kind of job is one entry in ``build_jobs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import os
import secrets
import signal
import socket
import sys
import traceback
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cargobay import observability, outages
from cargobay.config import Settings
from cargobay.jobs import queue
from cargobay.jobs.queue import ClaimedJob, JobQueue, PermanentJobError
from cargobay.jobs.scheduler import Periodic, Scheduler, Weekly
from cargobay.logs import get_logger
from cargobay.runtime import Runtime, build_runtime
from cargobay.services import scan_jobs
from cargobay.services.api_tokens import delete_expired_api_tokens
from cargobay.services.gc import KIND as GC_KIND
from cargobay.services.tokens import delete_expired_tokens
from cargobay.services.vulndb import RESCAN_JOB, SYNC_JOB

log = get_logger("cargobay.worker")

Handler = Callable[[ClaimedJob], Awaitable[dict[str, Any] | None]]


@dataclass
class JobSet:
    """What a worker can run: handlers by kind, and which kinds the scheduler enqueues on its own."""

    handlers: dict[str, Handler]
    periodic: list[Periodic] = field(default_factory=list)
    weekly: list[Weekly] = field(default_factory=list)  # kinds run at each registry's GC windows


# Jobs that ``serve`` runs in a child process of their own: a collection lists and deletes thousands of
# objects and runs one transaction after another for minutes, Python work (the S3 client's requests
# and XML, SQLAlchemy) that inside the serving process holds its interpreter lock against the requests
# (pull p99 during an S3 collection 2.8-13.6x idle there, 1.5-1.6x from a process of its own:
# benchmarks/FINDINGS.md). They run weekly, so starting an interpreter for each costs nothing.
CHILD_PROCESS_KINDS = frozenset({GC_KIND, "gc.deletions", "gc.sweep"})
CHILD_STOP_SECONDS = 10.0  # a child asked to stop (end of its input) is killed after this long

GC_SWEEP_EVERY = 7 * 24 * 3600.0  # the sweep of namespaces whose registry was deleted: weekly


def upload_expiry_interval(expiry_seconds: float) -> float:
    """Look for abandoned uploads four times per expiry period, at most every 5 minutes."""
    return min(300.0, max(1.0, expiry_seconds / 4))


def build_jobs(runtime: Runtime) -> JobSet:
    """The job kinds of Cargobay, run by the services of ``runtime`` (in `serve`, the same upload
    service, with its session locks, that the registry API uses)."""
    settings = runtime.settings
    db = runtime.db
    uploads = runtime.services.uploads

    async def expire_uploads(job: ClaimedJob) -> dict[str, Any]:
        return {"expired": await uploads.expire()}

    async def expire_tokens(job: ClaimedJob) -> dict[str, Any]:
        """Registry tokens past their expiry (already refused at once) and dead management JWTs."""
        deleted, api_deleted = await db.write(
            lambda s: (delete_expired_tokens(s), delete_expired_api_tokens(s))
        )
        return {"deleted": deleted, "api_tokens_deleted": api_deleted}

    async def prune_jobs(job: ClaimedJob) -> dict[str, Any]:
        return {"deleted": await db.write(queue.prune)}

    async def collect_registry(job: ClaimedJob) -> dict[str, Any]:
        """A registry's garbage collection: a window of its weekly schedule, or a requested run."""
        return await collector.run_job(job.id, job.payload)

    async def delete_objects(job: ClaimedJob) -> dict[str, Any]:
        """The stored objects of a deleted registry (when its delete could not finish them)."""
        registry_id = job.payload.get("registry_id")
        return {"deleted": await collector.drain_deletions(str(registry_id) if registry_id else None)}

    async def sweep_deleted_registries(job: ClaimedJob) -> dict[str, Any]:
        return (await collector.sweep_deleted_registries(job_id=job.id)).as_dict()

    collector = runtime.services.gc
    periodic = [
        Periodic("uploads.expire", every=upload_expiry_interval(settings.upload_expiry_seconds)),
        Periodic("tokens.expire", every=60),
        Periodic("jobs.prune", every=3600),
        Periodic("gc.sweep", every=GC_SWEEP_EVERY),
        # Safety nets: manifests never queued (stored before an upgrade, or a lost enqueue), and
        # database changes a rescan has not covered (an import whose rescan job was pruned).
        Periodic(scan_jobs.BACKLOG_JOB, every=300),
        Periodic(RESCAN_JOB, every=3600),
    ]
    if settings.vulndb_sync_seconds > 0:
        periodic.append(Periodic(SYNC_JOB, every=settings.vulndb_sync_seconds, max_attempts=2))
    return JobSet(
        handlers={
            "uploads.expire": expire_uploads,
            "tokens.expire": expire_tokens,
            "jobs.prune": prune_jobs,
            **scanning_jobs(runtime),
            GC_KIND: collect_registry,
            "gc.deletions": delete_objects,
            "gc.sweep": sweep_deleted_registries,
        },
        periodic=periodic,
        weekly=[Weekly(GC_KIND)],
    )


_quiet_until: dict[str, float] = {}


def _log_failure(event: str, **fields: Any) -> None:
    """Log the exception being handled: a known fault (a database outage) as one line at most every
    30 s per event, anything else with its traceback."""
    import sys
    import time

    error = sys.exc_info()[1]
    fault = outages.classify(error) if error is not None else None
    if fault is None:
        log.exception(event, **fields)
        return
    now = time.monotonic()
    if _quiet_until.get(event, 0.0) <= now:
        _quiet_until[event] = now + 30
        log.warning(event, fault=fault.value, error=f"{type(error).__name__}: {str(error)[:200]}", **fields)


def scanning_jobs(runtime: Runtime) -> dict[str, Handler]:
    """Vulnerability scanning: scans, rescans after database updates, SBOMs and the database sync."""
    settings = runtime.settings
    scans = runtime.services.scans
    vulndb = runtime.services.vulndb

    async def scan_manifest(job: ClaimedJob) -> dict[str, Any]:
        manifest_id = int(job.payload["manifest_id"])
        try:
            return (await scans.scan(manifest_id)).to_json()
        except Exception as exc:
            if job.attempts >= job.max_attempts:  # the last attempt: show Unknown with a scan time
                await scans.mark_failed(manifest_id, f"scan failed: {type(exc).__name__}: {exc}")
            raise

    async def scan_registry(job: ClaimedJob) -> dict[str, Any]:
        return {"queued": await scans.queue_registry(str(job.payload["registry_id"]))}

    async def scan_backlog(job: ClaimedJob) -> dict[str, Any]:
        return {"queued": await scans.queue_registry(None)}

    async def build_sbom(job: ClaimedJob) -> dict[str, Any]:
        payload = job.payload
        built = await scans.build_sbom(
            str(payload["registry_id"]), str(payload["digest"]), str(payload["name"])
        )
        return {"built": built}

    async def rescan(job: ClaimedJob) -> dict[str, Any]:
        return (await scans.rescan()).to_json()

    async def sync(job: ClaimedJob) -> dict[str, Any]:
        report = await asyncio.to_thread(
            vulndb.sync, settings.vulndb_url, settings.vulndb_ecosystems, settings.data_dir / "tmp"
        )
        if report.failed and not report.fetched and not report.unchanged:
            raise RuntimeError(f"vulnerability database sync failed: {report.failed}")
        return {
            "fetched": report.fetched,
            "unchanged": report.unchanged,
            "failed": report.failed,
            "version": report.imported.version if report.imported else None,
        }

    return {
        scan_jobs.SCAN_JOB: scan_manifest,
        scan_jobs.REGISTRY_JOB: scan_registry,
        scan_jobs.BACKLOG_JOB: scan_backlog,
        scan_jobs.SBOM_JOB: build_sbom,
        RESCAN_JOB: rescan,
        SYNC_JOB: sync,
    }


def in_child_processes(settings: Settings, jobs: JobSet) -> JobSet:
    """``jobs`` with the kinds of ``CHILD_PROCESS_KINDS`` run in a child process each."""
    handlers = {
        kind: (_child_process_handler(settings) if kind in CHILD_PROCESS_KINDS else handler)
        for kind, handler in jobs.handlers.items()
    }
    return JobSet(handlers, jobs.periodic, jobs.weekly)


def _child_process_handler(settings: Settings) -> Handler:
    async def run(job: ClaimedJob) -> dict[str, Any] | None:
        return await run_in_child_process(settings, job)

    return run


async def run_in_child_process(settings: Settings, job: ClaimedJob) -> dict[str, Any] | None:
    """Run ``job``'s handler in ``python -m cargobay.job_process`` (the protocol is described
    there); cancelled, the child is asked to stop (its input ends) and killed if it does not."""
    request = {"settings": settings.model_dump(mode="json"), "job": dataclasses.asdict(job)}
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "cargobay.job_process",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        # Out of the server's process group: a signal to the group (Ctrl-C, a supervisor's SIGTERM)
        # stops the server, which then stops the child through its input.
        start_new_session=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        child.stdin.write(json.dumps(request).encode() + b"\n")
        await child.stdin.drain()
        output = await child.stdout.read()
        status = await child.wait()
    except BaseException:
        await _stop_child(child)
        raise
    finally:
        observability.forget_process(child.pid)
    answer = _last_json_line(output)
    if status == 0 and "result" in answer:
        result = answer["result"]
        return result if isinstance(result, dict) else None
    reason = answer.get("error") or f"the job's process ended with status {status} and no answer"
    raise JobProcessFailed(str(reason))


class JobProcessFailed(RuntimeError):
    """A job's child process failed or died; its own log has the details (no traceback here)."""


async def _stop_child(child: asyncio.subprocess.Process) -> None:
    if child.returncode is not None:
        return
    if child.stdin is not None:
        child.stdin.close()
    try:
        await asyncio.wait_for(asyncio.shield(child.wait()), CHILD_STOP_SECONDS)
    except (TimeoutError, asyncio.CancelledError):
        child.kill()
        await child.wait()


def _last_json_line(output: bytes) -> dict[str, Any]:
    for line in reversed(output.splitlines()):
        try:
            answer = json.loads(line)
        except ValueError:
            continue
        if isinstance(answer, dict):
            return answer
    return {}


def new_worker_id() -> str:
    return f"{socket.gethostname()[:32]}:{os.getpid()}:{secrets.token_hex(4)}"


class JobRunner:
    """Claims due jobs of the kinds it has handlers for and runs up to ``concurrency`` at once.

    While a handler runs its lease is extended every third of the lease; if the lease is lost
    (another worker took the job over) the handler is cancelled. On stop, running handlers get
    ``grace`` seconds to finish; the rest are cancelled and their jobs released to the queue.
    """

    def __init__(
        self,
        jobs_queue: JobQueue,
        handlers: Mapping[str, Handler],
        *,
        worker_id: str | None = None,
        lease: float = 60.0,
        poll_interval: float = 1.0,
        concurrency: int = 2,
        grace: float = 10.0,
    ) -> None:
        self.queue = jobs_queue
        self.handlers = dict(handlers)
        self.kinds = sorted(self.handlers)
        self.worker_id = worker_id or new_worker_id()
        self.lease = timedelta(seconds=lease)
        self.poll_interval = poll_interval
        self.concurrency = concurrency
        self.grace = grace
        self._running: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        log.info("worker_started", worker=self.worker_id, kinds=self.kinds)
        try:
            while not stop.is_set():
                self._wake.clear()
                claimed = await self._claim()
                for job in claimed:
                    task = asyncio.create_task(self._execute(job), name=f"job-{job.id}")
                    self._running.add(task)
                    task.add_done_callback(self._finished)
                if claimed and len(self._running) < self.concurrency:
                    continue  # there may be more due work
                await self._sleep(stop)
        finally:
            await self._drain()
            log.info("worker_stopped", worker=self.worker_id)

    async def run_until_idle(self) -> int:
        """Run due jobs until none is left (for tests and one-shot use); returns how many ran."""
        count = 0
        while claimed := await self._claim():
            count += len(claimed)
            await asyncio.gather(*(self._execute(job) for job in claimed))
        return count

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()

    async def _claim(self) -> list[ClaimedJob]:
        free = self.concurrency - len(self._running)
        if free <= 0:
            return []
        try:
            return await self.queue.claim(self.worker_id, self.kinds, self.lease, free)
        except Exception:
            _log_failure("job_claim_failed", worker=self.worker_id)
            return []

    async def _sleep(self, stop: asyncio.Event) -> None:
        waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
        try:
            await asyncio.wait(waits, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waits:
                waiter.cancel()

    async def _drain(self) -> None:
        if not self._running:
            return
        _, pending = await asyncio.wait(set(self._running), timeout=self.grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _execute(self, job: ClaimedJob) -> None:
        work = asyncio.ensure_future(self.handlers[job.kind](job))
        try:
            while True:
                done, _ = await asyncio.wait({work}, timeout=self.lease.total_seconds() / 3)
                if done:
                    break
                if not await self._extend(job):
                    log.warning("job_lease_lost", job=job.id, kind=job.kind, worker=self.worker_id)
                    work.cancel()
                    await asyncio.gather(work, return_exceptions=True)
                    return
        except asyncio.CancelledError:
            work.cancel()
            await asyncio.gather(work, return_exceptions=True)
            await self._settle(self.queue.release(job), job, "job_released")
            raise
        if work.cancelled():
            await self._settle(self.queue.fail(job, "handler was cancelled"), job, "job_failed")
            return
        error = work.exception()
        if error is None:
            await self._settle(self.queue.complete(job, work.result()), job, "job_succeeded")
            return
        permanent = isinstance(error, PermanentJobError)
        message = "".join(traceback.format_exception_only(type(error), error)).strip()
        status = await self._settle(self.queue.fail(job, message, retry=not permanent), job, "job_failed")
        log.warning(
            "job_attempt_failed",
            job=job.id,
            kind=job.kind,
            attempt=job.attempts,
            error=message,
            status=status,
            traceback=None
            if permanent or outages.classify(error) or isinstance(error, JobProcessFailed)
            else "".join(traceback.format_exception(error)),
        )

    async def _extend(self, job: ClaimedJob) -> bool:
        try:
            return await self.queue.heartbeat(job, self.lease)
        except Exception:
            log.exception("job_heartbeat_failed", job=job.id)
            return True  # keep working: the lease may still hold, and settling is fenced anyway

    async def _settle(self, outcome: Awaitable[Any], job: ClaimedJob, event: str) -> Any:
        """Record the outcome; a lost lease or a failure here leaves the job to its lease expiry."""
        try:
            result = await outcome
        except Exception:
            log.exception("job_settle_failed", job=job.id, kind=job.kind)
            return None
        if result is False or result is None:
            log.warning("job_lease_lost", job=job.id, kind=job.kind, worker=self.worker_id)
            observability.JOB_RUNS.labels(job.kind, "lease_lost").inc()
        else:
            log.debug(event, job=job.id, kind=job.kind, attempt=job.attempts)
            observability.JOB_RUNS.labels(job.kind, event.removeprefix("job_")).inc()
        return result


async def run_jobs(runtime: Runtime, jobs: JobSet, stop: asyncio.Event) -> None:
    """The scheduler and a job runner, until ``stop`` is set."""
    settings = runtime.settings
    runner = JobRunner(
        JobQueue(runtime.db),
        jobs.handlers,
        lease=settings.job_lease_seconds,
        poll_interval=settings.job_poll_seconds,
        concurrency=settings.job_concurrency,
        grace=settings.job_grace_seconds,
    )
    scheduler = Scheduler(runtime.db, jobs.periodic, weekly=jobs.weekly)
    await asyncio.gather(runner.run(stop), scheduler.run(stop))


@contextlib.asynccontextmanager
async def in_process_jobs(runtime: Runtime) -> AsyncIterator[None]:
    """Background jobs inside a serving process (when ``in_process_jobs`` is on)."""
    if not runtime.settings.in_process_jobs:
        yield
        return
    stop = asyncio.Event()
    jobs = build_jobs(runtime)
    if runtime.settings.gc_in_child_process:
        jobs = in_child_processes(runtime.settings, jobs)
    task = asyncio.create_task(run_jobs(runtime, jobs, stop))
    try:
        yield
    finally:
        stop.set()
        # Leave the server's own shutdown budget some room: unfinished jobs are released.
        try:
            await asyncio.wait_for(task, runtime.settings.job_grace_seconds + 5)
        except Exception:
            log.exception("in_process_jobs_stop_failed")


JobsFactory = Callable[[Runtime], JobSet]


def run_worker(settings: Settings, jobs_factory: JobsFactory = build_jobs) -> None:
    """``cargobay worker``: run jobs until SIGTERM or SIGINT, then stop gracefully."""
    runtime = build_runtime(settings, migrate=True)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        try:
            await run_jobs(runtime, jobs_factory(runtime), stop)
        finally:
            await runtime.close()

    asyncio.run(main())
