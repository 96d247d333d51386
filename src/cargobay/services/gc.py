"""Online garbage collection (GitLab's design): reference changes queue reviews, the collector
deletes what is still unreferenced once a grace period has passed, and the registry never stops.

A run of one registry goes through phases:

1. ``uploads``: upload sessions idle past their expiry are dropped with their staged bytes.
2. ``manifests`` (only where the registry's policy says ``delete``): untagged manifests nothing
   keeps (no index lists them, no referrer names them as subject, they refer to no subject that is
   there) whose last change is older than the grace period.
3. ``blobs``: blobs no manifest references (layers, configs, referrer payloads, blobs uploaded or
   mounted and never referenced, those of deleted repositories) whose last reference change is
   older than the grace period. Each batch is one transaction that locks, re-checks the references
   and deletes the rows (see ``db.queries.gc.collect_blobs``); the bytes go after it commits, a
   few batches' at once while the next transactions run (on S3 a DeleteObjects request a batch).
4. ``objects``: objects still queued for deletion (a crash after a commit, a deleted registry).
5. ``sweep``: a paced listing of the registry's namespace in the blob store, the only listing
   anywhere: objects no row names (crash leftovers, interrupted sealing) are deleted once they are
   still unnamed after the grace period since the sweep first saw them.

A dry run does none of the deleting and reports what phases 1-3 would free and how many objects
no row names. Progress (phase, done/total, time left) is written to the run's row about once a second.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from cargobay.auth.principals import UserPrincipal
from cargobay.db.engine import Database
from cargobay.db.models import GcRun, Registry
from cargobay.db.queries import gc, gc_objects, gc_runs
from cargobay.db.queries.gc import FreedObject
from cargobay.db.types import utcnow
from cargobay.domain.errors import InvalidInput, NotFound
from cargobay.faults import crash_point
from cargobay.jobs.queue import enqueue
from cargobay.logs import get_logger
from cargobay.services import object_deletions
from cargobay.services.gc_runs import (
    ProgressCallback,
    RunReport,
    RunView,
    Tracker,
    observe,
    run_view,
)
from cargobay.services.gc_sweep import Sweep
from cargobay.services.ownership import require_manager, visible_registry
from cargobay.services.uploads import UploadService
from cargobay.storage.base import BlobStore

log = get_logger("cargobay.gc")

KIND = "gc.registry"  # the job of one registry's run (scheduled windows, API requests)
BATCH = 500  # reviews per deletion transaction: short enough that writers hardly wait
# Batches whose bytes are being deleted while the next batch's transaction runs. One: with four, a
# local S3 server answering four DeleteObjects at once took the pull p99 during a run from 1.1x to
# 2.1x idle (benchmarks/FINDINGS.md), and one keeps a run's deletes at one request to the store.
DELETING_BATCHES = 1
STALE_AFTER = timedelta(minutes=5)  # a running run without progress for this long was interrupted
MANIFEST_PASSES = 10  # deleting an index or a subject can make more manifests collectable
RUN_LIST_LIMIT = 100
DEFAULT_RUN_LIST = 20
RUN_ID_PATTERN = "^[0-9]{1,18}$"
RUNS_KEPT = 200  # runs remembered per registry


def concurrency_key(registry_id: str) -> str:
    """Jobs of one registry's collection never run at once (the scheduler's ``{kind}:{registry}``)."""
    return f"{KIND}:{registry_id}"


def check_policy(value: object, field: str = "untaggedManifests") -> str:
    if value not in gc.UNTAGGED_POLICIES:
        raise InvalidInput(f"must be one of {', '.join(gc.UNTAGGED_POLICIES)}", field=field)
    return str(value)


def parse_run_id(value: str, field: str = "runId") -> int:
    """A run's number, or a 400 naming the parameter."""
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise InvalidInput(f"{value[:80]!r} is not a run number", field=field)
    return int(value)


class GarbageCollector:
    def __init__(
        self,
        db: Database,
        store: BlobStore,
        uploads: UploadService,
        *,
        grace_seconds: int,
        sweep_keys_per_second: float,
        batch: int = BATCH,
    ) -> None:
        self.db = db
        self.store = store
        self.uploads = uploads
        self.grace = timedelta(seconds=grace_seconds)
        self.sweep = Sweep(db, store, sweep_keys_per_second)
        self.batch = batch

    # -- runs ---------------------------------------------------------------------------------
    async def collect(
        self,
        registry_id: str,
        *,
        grace: timedelta | None = None,
        dry_run: bool = False,
        trigger: str = "cli",
        requested_by: str | None = None,
        run_id: int | None = None,
        job_id: int | None = None,
        on_progress: ProgressCallback | None = None,
        sweep: bool = True,
    ) -> RunReport:
        """Collect one registry's garbage (see the module docstring); the run is recorded in
        ``gc_runs`` (``run_id`` continues a queued or interrupted one). ``sweep=False`` leaves the
        listing of the store out (for callers that run collections back to back)."""
        grace = self.grace if grace is None else grace
        found = await self.db.read(_registry_row, registry_id)
        if found is None:
            raise NotFound("registry", registry_id)
        name, policy = found
        run = await self._start_run(
            registry_id, run_id, job_id, trigger, requested_by, dry_run, grace, policy
        )
        report = RunReport(run, registry_id, name, dry_run, int(grace.total_seconds()), policy)
        tracker = Tracker(self.db, report, on_progress)
        return await self._finish(tracker, self._collect(registry_id, policy, grace, tracker, sweep))

    async def sweep_deleted_registries(
        self,
        *,
        grace: timedelta | None = None,
        dry_run: bool = False,
        trigger: str = "schedule",
        job_id: int | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> RunReport:
        """Delete what registries that no longer exist left in the store: objects still queued for
        deletion, then (a sweep of the whole store) objects of namespaces no registry row has."""
        grace = self.grace if grace is None else grace
        run = await self._start_run(None, None, job_id, trigger, None, dry_run, grace, gc.KEEP)
        report = RunReport(run, None, "-", dry_run, int(grace.total_seconds()), gc.KEEP)
        tracker = Tracker(self.db, report, on_progress)

        async def work() -> None:
            if not dry_run:
                await tracker.phase("objects", await gc_objects.count_pending_deletions(self.db, None))
                report.objects_deleted += await object_deletions.drain(
                    self.db, self.store, None, tracker.advance
                )
            await tracker.phase("sweep", 0)
            await self.sweep.run("", grace, dry_run, tracker, only_missing=True)

        return await self._finish(tracker, work())

    async def _start_run(
        self,
        registry_id: str | None,
        run_id: int | None,
        job_id: int | None,
        trigger: str,
        requested_by: str | None,
        dry_run: bool,
        grace: timedelta,
        policy: str,
    ) -> int:
        def work(session: Session) -> int:
            now = utcnow()
            gc_runs.fail_stale_runs(session, registry_id, now - STALE_AFTER)
            gc_runs.prune_runs(session, registry_id, RUNS_KEPT)
            run = gc_runs.get_run(session, run_id) if run_id is not None else None
            if run is None and job_id is not None:
                run = gc_runs.run_of_job(session, job_id)  # the job's earlier attempt
            if run is None:
                run = gc_runs.add_run(
                    session,
                    GcRun(
                        registry_id=registry_id,
                        trigger=trigger,
                        requested_by=requested_by,
                        job_id=job_id,
                        dry_run=dry_run,
                        grace_seconds=int(grace.total_seconds()),
                        untagged_manifests=policy,
                        created_at=now,
                    ),
                )
            run.state, run.started_at, run.heartbeat_at = "running", now, now
            run.finished_at, run.error, run.job_id = None, None, job_id if job_id is not None else run.job_id
            run.untagged_manifests = policy
            session.flush()
            return run.id

        return await self.db.write(work)

    async def _finish(self, tracker: Tracker, work: Any) -> RunReport:
        report = tracker.report
        started = time.monotonic()
        try:
            await work
        except BaseException as exc:
            report.seconds = time.monotonic() - started
            await tracker.close("failed", f"{type(exc).__name__}: {exc}"[:2000])
            observe(report, "failed")
            log.warning("gc_run_failed", registry=report.registry, run=report.run_id, error=str(exc))
            raise
        report.seconds = time.monotonic() - started
        await tracker.close("succeeded", None)
        observe(report, "succeeded")
        log.info("gc_run_finished", **report.as_dict())
        return report

    async def _collect(
        self, registry_id: str, policy: str, grace: timedelta, tracker: Tracker, sweep: bool
    ) -> None:
        report = tracker.report
        now = utcnow()
        manifests_due = (
            await gc.due_manifest_reviews(self.db, registry_id, now - grace) if policy == gc.DELETE else 0
        )
        blobs_due = await gc.due_blob_reviews(self.db, registry_id, now - grace)
        pending = await gc_objects.count_pending_deletions(self.db, registry_id)
        objects = await self.db.read(gc_objects.object_estimate, registry_id)
        tracker.total = manifests_due + blobs_due + pending + objects

        await tracker.phase("uploads")
        report.uploads_expired = await self._expire_uploads(report.dry_run)

        if policy == gc.DELETE:
            await tracker.phase("manifests")
            await self._collect_manifests(registry_id, grace, tracker)

        await tracker.phase("blobs")
        await self._collect_blobs(registry_id, grace, tracker)

        if not report.dry_run:
            await tracker.phase("objects")
            report.objects_deleted += await object_deletions.drain(
                self.db, self.store, registry_id, tracker.advance
            )

        if sweep:
            await tracker.phase("sweep", expect=await self.db.read(gc_objects.object_estimate, registry_id))
            await self.sweep.run(f"{registry_id}/", grace, report.dry_run, tracker)

    async def _expire_uploads(self, dry_run: bool) -> int:
        if dry_run:
            return await gc_objects.idle_uploads(self.db, utcnow() - self.uploads.expiry)
        expired = 0
        while (count := await self.uploads.expire()) > 0:
            expired += count
        return expired

    async def _collect_manifests(self, registry_id: str, grace: timedelta, tracker: Tracker) -> None:
        report = tracker.report
        if report.dry_run:
            estimate = await gc.manifest_candidates(self.db, registry_id, utcnow() - grace)
            report.candidates += await gc.due_manifest_reviews(self.db, registry_id, utcnow() - grace)
            report.manifests_deleted = estimate.items
            return
        for _pass in range(MANIFEST_PASSES):
            cutoff, after, deleted = utcnow() - grace, None, 0
            while await gc.manifests_due(self.db, registry_id, cutoff, after):  # a read spares a write lock
                batch = await self.db.write_raw(gc.collect_manifests, registry_id, cutoff, after, self.batch)
                if batch.last is None:
                    break
                after = batch.last
                deleted += batch.deleted
                report.candidates += batch.examined
                report.manifests_deleted += batch.deleted
                crash_point("gc.manifests_deleted")
                await tracker.advance(batch.examined)
                if batch.examined < self.batch:
                    break
            if not deleted or grace > timedelta(0):
                break  # what the deletions queued waits for its own grace period

    async def _collect_blobs(self, registry_id: str, grace: timedelta, tracker: Tracker) -> None:
        report = tracker.report
        cutoff = utcnow() - grace
        if report.dry_run:
            estimate = await gc.blob_candidates(self.db, registry_id, cutoff)
            report.candidates += await gc.due_blob_reviews(self.db, registry_id, cutoff)
            report.blobs_freed, report.bytes_freed = estimate.items, estimate.bytes
            return
        after = None
        deleting: deque[asyncio.Future[int]] = deque()
        try:
            while await gc.blobs_due(self.db, registry_id, cutoff, after):  # a read spares a write lock
                crash_point("gc.blob_batch")
                batch = await self.db.write_raw(gc.collect_blobs, registry_id, cutoff, after, self.batch)
                if batch.last is None:
                    break
                after = batch.last
                report.candidates += batch.examined
                report.blobs_freed += len(batch.freed)
                report.bytes_freed += batch.freed_bytes
                crash_point("gc.rows_deleted")
                # The bytes of a batch go while the next batches' transactions run.
                if batch.freed:
                    while len(deleting) >= DELETING_BATCHES:
                        report.objects_deleted += await deleting.popleft()
                    deleting.append(asyncio.ensure_future(self._delete(batch.freed)))
                await tracker.advance(batch.examined)
                if batch.examined < self.batch:
                    break
        finally:
            done = await asyncio.gather(*deleting, return_exceptions=True)
            report.objects_deleted += sum(n for n in done if isinstance(n, int))
            failed = next((e for e in done if isinstance(e, BaseException)), None)
            if failed is not None:
                raise failed

    async def _delete(self, objects: Sequence[FreedObject]) -> int:
        return await object_deletions.delete_batch(self.db, self.store, objects)

    # -- the management API -------------------------------------------------------------------
    async def request_run(self, actor: UserPrincipal, registry_id: str, dry_run: bool) -> RunView:
        """Queue a run of the registry (owners, admins, manageRegistry); a run already queued and not
        started yet is answered instead of a second one."""

        def work(session: Session) -> RunView:
            registry = visible_registry(session, actor, registry_id)
            require_manager(actor, "run garbage collection")
            for run in gc_runs.runs_of(session, registry_id, 5):
                if run.state == "queued" and run.dry_run == dry_run:
                    return run_view(run)
            run = gc_runs.add_run(
                session,
                GcRun(
                    registry_id=registry_id,
                    trigger="api",
                    requested_by=actor.email,
                    dry_run=dry_run,
                    grace_seconds=int(self.grace.total_seconds()),
                    untagged_manifests=registry.gc_untagged_manifests,
                    state="queued",
                    created_at=utcnow(),
                ),
            )
            job = enqueue(
                session,
                KIND,
                {"registry_id": registry_id, "run_id": run.id},
                concurrency_key=concurrency_key(registry_id),
                max_attempts=3,
            )
            run.job_id = job.id
            session.flush()
            return run_view(run)

        return await self.db.write(work)

    async def list_runs(
        self, actor: UserPrincipal, registry_id: str, limit: int = 20, before_id: int | None = None
    ) -> list[RunView]:
        """The registry's runs, newest first (any member of the contract)."""

        def work(session: Session) -> list[RunView]:
            visible_registry(session, actor, registry_id)
            return [
                run_view(r)
                for r in gc_runs.runs_of(session, registry_id, min(limit, RUN_LIST_LIMIT), before_id)
            ]

        return await self.db.read(work)

    async def get_run(self, actor: UserPrincipal, registry_id: str, run_id: int) -> RunView:
        def work(session: Session) -> RunView:
            visible_registry(session, actor, registry_id)
            run = gc_runs.get_run(session, run_id)
            if run is None or run.registry_id != registry_id:
                raise NotFound("gc run", str(run_id), f"garbage collection run {run_id} not found")
            return run_view(run)

        return await self.db.read(work)

    async def policy(self, actor: UserPrincipal, registry_id: str) -> str:
        return await self.db.read(lambda s: visible_registry(s, actor, registry_id).gc_untagged_manifests)

    async def set_policy(self, actor: UserPrincipal, registry_id: str, policy: str) -> str:
        check_policy(policy)

        def work(session: Session) -> str:
            registry = visible_registry(session, actor, registry_id)
            require_manager(actor, "change garbage collection settings")
            registry.gc_untagged_manifests = policy
            return policy

        return await self.db.write(work)

    # -- the operator (CLI) -------------------------------------------------------------------
    async def registries(self, name: str | None = None) -> list[tuple[str, str]]:
        """(id, name) of the registry named ``name``, or of every registry."""
        every = await self.db.read(gc_runs.registry_ids)
        if name is None:
            return every
        chosen = [r for r in every if r[1] == name]
        if not chosen:
            raise NotFound("registry", name, f"no registry is named {name!r}")
        return chosen

    async def set_policy_by_name(self, name: str, policy: str | None) -> str:
        """The registry's policy for untagged manifests, changed to ``policy`` when given."""
        ((registry_id, _),) = await self.registries(name)
        if policy is None:
            found = await self.db.read(gc_runs.untagged_policy, registry_id)
            return str(found)
        check_policy(policy, "--untagged-manifests")
        await self.db.write(gc_runs.set_untagged_policy, registry_id, policy)
        return policy

    async def drain_deletions(self, registry_id: str | None) -> int:
        """Delete the objects queued for deletion (of one registry, or all)."""
        return await object_deletions.drain(self.db, self.store, registry_id)

    async def run_job(self, job_id: int, payload: dict[str, Any]) -> dict[str, Any]:
        """The ``gc.registry`` job: a scheduled window (``window``) or a queued request (``run_id``)."""
        registry_id = str(payload["registry_id"])
        if await self.db.read(_registry_row, registry_id) is None:
            return {"skipped": "the registry no longer exists"}
        run_id = payload.get("run_id")
        dry_run = False
        trigger = "schedule"
        if run_id is not None:
            run = await self.db.read(gc_runs.get_run, int(run_id))
            if run is None:
                return {"skipped": "the run no longer exists"}
            dry_run, trigger = bool(run.dry_run), run.trigger
        report = await self.collect(
            registry_id,
            dry_run=dry_run,
            trigger=trigger,
            run_id=int(run_id) if run_id is not None else None,
            job_id=job_id,
        )
        return report.as_dict()


# -- helpers ----------------------------------------------------------------------------------------


def _registry_row(session: Session, registry_id: str) -> tuple[str, str] | None:
    registry = session.get(Registry, registry_id)
    return (registry.name, registry.gc_untagged_manifests) if registry is not None else None
