"""Garbage collection through the services, on SQLite and PostgreSQL: what is collected when, what
is never collected, storage usage, dry runs, the sweep, runs and their rows."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cargobay import gc_metrics
from cargobay.auth.principals import UserPrincipal
from cargobay.config import Settings
from cargobay.db.engine import Database
from cargobay.db.models import (
    Blob,
    GcBlobReview,
    GcObjectDeletion,
    GcRun,
    Job,
    Manifest,
    Registry,
    Upload,
)
from cargobay.db.types import utcnow
from cargobay.domain.digests import Digest
from cargobay.domain.errors import NotFound, PermissionDenied, UploadUnknown
from cargobay.runtime import Runtime, assemble
from cargobay.services.gc import DELETING_BATCHES
from cargobay.services.gc_runs import Progress
from cargobay.storage.base import BlobStore
from cargobay.storage.factory import open_store
from cargobay.storage.s3 import MIN_PART, S3Store
from cargobay.storage.sealing import PlainSealer
from tests.support.gc import (
    age_reviews,
    blob_digests,
    check_references_intact,
    expected_storage,
    make_runtime,
    push_image,
    push_index,
    storage_bytes,
    upload,
)
from tests.support.images import sha256
from tests.support.s3 import Calls, S3Server

HOUR = timedelta(hours=1)
ZERO = timedelta(0)


@pytest.fixture
def rt(db: Database, db_url: str, tmp_path: Path) -> Runtime:
    return make_runtime(db, db_url, tmp_path, gc_sweep_keys_per_second=0)


def owner(contract_number: int) -> UserPrincipal:
    return UserPrincipal("u1", "owner@example.com", contract_number, "owner", False)


def member(contract_number: int) -> UserPrincipal:
    return UserPrincipal("u2", "member@example.com", contract_number, "user", False)


def _count(db: Database, model: type) -> int:
    return int(db.read_sync(lambda s: s.scalar(select(func.count()).select_from(model))) or 0)


def _files(root: Path) -> set[str]:
    objects = root / "storage" / "objects"
    return {p.relative_to(objects).as_posix() for p in objects.rglob("*") if p.is_file()}


# -- what is collected, and when ------------------------------------------------------------------


async def test_an_unreferenced_blob_waits_for_the_grace_period(rt: Runtime, registry_id: str) -> None:
    digest = (await upload(rt, registry_id, "app", b"pushed, never referenced"))["digest"]
    kept = await rt.services.gc.collect(registry_id, grace=HOUR)
    assert (kept.blobs_freed, kept.candidates) == (0, 0)
    assert digest in blob_digests(rt.db, registry_id)

    age_reviews(rt.db, 2 * HOUR)
    freed = await rt.services.gc.collect(registry_id, grace=HOUR)
    assert (freed.blobs_freed, freed.bytes_freed) == (1, len(b"pushed, never referenced"))
    assert blob_digests(rt.db, registry_id) == set()
    assert _files(rt.settings.data_dir) == set()
    assert storage_bytes(rt.db, registry_id) == 0


async def test_referenced_blobs_are_never_collected(rt: Runtime, registry_id: str) -> None:
    image = await push_image(rt, registry_id, "app", "v1", [b"layer one", b"layer two"])
    report = await rt.services.gc.collect(registry_id, grace=ZERO)
    assert report.candidates == 3 and report.blobs_freed == 0
    assert blob_digests(rt.db, registry_id) == set(image.blobs)
    assert _count(rt.db, GcBlobReview) == 0  # reviewed, found referenced: out of the queue
    assert await check_references_intact(rt) == 3


class Deletions:
    """A store whose batch deletes take a while, counting how many run at once."""

    def __init__(self, store: BlobStore) -> None:
        self.store, self.running, self.most = store, 0, 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)

    async def delete_many(self, keys: Sequence[str]) -> None:
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(0.05)
        await self.store.delete_many(keys)
        self.running -= 1


async def test_the_bytes_of_several_batches_are_deleted_at_once(
    rt: Runtime, registry_id: str, contract_number: int
) -> None:
    await push_image(rt, registry_id, "drop", "v1", [b"layer %d" % i for i in range(19)])
    await rt.services.repositories.delete(owner(contract_number), registry_id, "drop")
    deletions = Deletions(rt.store)
    rt.services.gc.store, rt.services.gc.batch = deletions, 2  # type: ignore[assignment]
    report = await rt.services.gc.collect(registry_id, grace=ZERO, sweep=False)
    assert report.blobs_freed == report.objects_deleted == 20  # ten batches
    assert deletions.most == DELETING_BATCHES
    assert _files(rt.settings.data_dir) == set()


async def test_deleting_a_repository_frees_its_unique_layers_and_keeps_shared_ones(
    rt: Runtime, registry_id: str, contract_number: int
) -> None:
    base = b"shared base layer" * 100
    kept = await push_image(rt, registry_id, "keep", "v1", [base, b"unique to keep"])
    dropped = await push_image(rt, registry_id, "drop", "v1", [base, b"unique to drop" * 50])
    await rt.services.gc.collect(registry_id, grace=ZERO)  # everything referenced: the queue empties
    before = storage_bytes(rt.db, registry_id)

    await rt.services.repositories.delete(owner(contract_number), registry_id, "drop")
    assert _count(rt.db, GcBlobReview) == 3  # the dropped repository's blobs changed now
    report = await rt.services.gc.collect(registry_id, grace=ZERO)
    unique = set(dropped.blobs) - set(kept.blobs)
    assert report.blobs_freed == len(unique) == 2
    assert report.bytes_freed == len(b"unique to drop" * 50) + json.loads(dropped.body)["config"]["size"]
    assert blob_digests(rt.db, registry_id) == set(kept.blobs)
    assert storage_bytes(rt.db, registry_id) == before - len(dropped.body) - report.bytes_freed
    assert storage_bytes(rt.db, registry_id) == expected_storage(rt.db, registry_id)
    assert await check_references_intact(rt) == 3
    assert len(_files(rt.settings.data_dir)) == 3


async def test_deleting_a_manifest_queues_its_blobs(rt: Runtime, registry_id: str) -> None:
    image = await push_image(rt, registry_id, "app", None, [b"only layer"])
    await rt.services.gc.collect(registry_id, grace=ZERO)
    assert await rt.services.manifests.delete(registry_id, "app", image.digest)
    report = await rt.services.gc.collect(registry_id, grace=HOUR)
    assert report.blobs_freed == 0  # unreferenced just now: the grace period starts again
    report = await rt.services.gc.collect(registry_id, grace=ZERO)
    assert report.blobs_freed == 2
    assert blob_digests(rt.db, registry_id) == set()


async def test_a_manifest_push_postpones_a_queued_review(rt: Runtime, registry_id: str) -> None:
    layer = await upload(rt, registry_id, "app", b"uploaded yesterday")
    age_reviews(rt.db, 2 * HOUR)
    await push_image(rt, registry_id, "other", "v1", [b"unrelated"])
    # the review of the uploaded layer is due, but a push naming it moves it
    image = await push_image(rt, registry_id, "app", "v1", [b"uploaded yesterday"])
    assert layer["digest"] in image.blobs
    changed = rt.db.read_sync(
        lambda s: s.scalar(
            select(GcBlobReview.changed_at)
            .join(Blob, Blob.id == GcBlobReview.blob_id)
            .where(Blob.digest == layer["digest"])
        )
    )
    assert changed is not None and changed > utcnow() - timedelta(minutes=1)


async def test_blobs_are_collected_with_encryption_on(
    db: Database, db_url: str, tmp_path: Path, registry_id: str, contract_number: int
) -> None:
    rt = make_runtime(db, db_url, tmp_path, encrypted=True, gc_sweep_keys_per_second=0)
    await push_image(rt, registry_id, "keep", "v1", [b"base" * 10, b"kept"])
    await push_image(rt, registry_id, "drop", "v1", [b"base" * 10, b"dropped"])
    await rt.services.repositories.delete(owner(contract_number), registry_id, "drop")
    report = await rt.services.gc.collect(registry_id, grace=ZERO)
    assert report.blobs_freed == 2 and report.orphans_found == 0
    files = _files(tmp_path)
    assert len(files) == 3 and all(f.endswith(".cbe") for f in files)
    assert await check_references_intact(rt) == 3


# -- untagged manifests -----------------------------------------------------------------------------


async def test_untagged_manifests_are_kept_by_default(rt: Runtime, registry_id: str) -> None:
    old = await push_image(rt, registry_id, "app", "latest", [b"v1 layer"])
    await push_image(rt, registry_id, "app", "latest", [b"v2 layer"])  # the tag moves off ``old``
    report = await rt.services.gc.collect(registry_id, grace=ZERO)
    assert report.manifests_deleted == 0 and report.blobs_freed == 0
    assert (await rt.services.manifests.get(registry_id, "app", old.digest)) is not None  # pull by digest


async def test_untagged_manifests_go_where_the_policy_says_delete(
    rt: Runtime, registry_id: str, contract_number: int
) -> None:
    await rt.services.gc.set_policy(owner(contract_number), registry_id, "delete")
    old = await push_image(rt, registry_id, "app", "latest", [b"v1 layer"])
    new = await push_image(rt, registry_id, "app", "latest", [b"v2 layer"])
    child = await push_image(rt, registry_id, "app", None, [b"arm64 layer"])
    index = await push_index(rt, registry_id, "app", "multi", [child])
    signed = await push_image(rt, registry_id, "app", None, [b"signature"], subject=new)
    orphan_subject = await push_image(rt, registry_id, "app", None, [b"untagged, signed"])
    orphan_sig = await push_image(rt, registry_id, "app", None, [b"sig of untagged"], subject=orphan_subject)

    report = await rt.services.gc.collect(registry_id, grace=HOUR)
    assert report.manifests_deleted == 0  # within the grace period
    age_reviews(rt.db, 2 * HOUR)
    report = await rt.services.gc.collect(registry_id, grace=HOUR)
    present = {d for d in rt.db.read_sync(lambda s: s.scalars(select(Manifest.digest)).all())}
    assert old.digest not in present  # untagged, nothing refers to it
    assert {new.digest, child.digest, index.digest, signed.digest} <= present
    # a referrer keeps its subject and the subject keeps its referrer (documented)
    assert {orphan_subject.digest, orphan_sig.digest} <= present
    assert report.manifests_deleted == 1
    # the blobs of the deleted manifest wait for their own grace period, then go
    age_reviews(rt.db, 2 * HOUR)
    report = await rt.services.gc.collect(registry_id, grace=HOUR)
    assert report.blobs_freed == 2
    assert await check_references_intact(rt) > 0

    # untagging the index lets it go, then its child, in one run with no grace
    assert await rt.services.manifests.delete(registry_id, "app", "multi")
    report = await rt.services.gc.collect(registry_id, grace=ZERO)
    present = {d for d in rt.db.read_sync(lambda s: s.scalars(select(Manifest.digest)).all())}
    assert index.digest not in present and child.digest not in present
    assert storage_bytes(rt.db, registry_id) == expected_storage(rt.db, registry_id)


async def test_policy_is_read_by_members_and_changed_by_managers(
    rt: Runtime, registry_id: str, contract_number: int
) -> None:
    assert await rt.services.gc.policy(member(contract_number), registry_id) == "keep"
    with pytest.raises(PermissionDenied):
        await rt.services.gc.set_policy(member(contract_number), registry_id, "delete")
    with pytest.raises(NotFound):
        await rt.services.gc.policy(owner(contract_number + 1), registry_id)
    assert await rt.services.gc.set_policy(owner(contract_number), registry_id, "delete") == "delete"
    assert await rt.services.gc.set_policy_by_name("reg-one", None) == "delete"
    assert await rt.services.gc.set_policy_by_name("reg-one", "keep") == "keep"


# -- dry runs, runs, progress, metrics ----------------------------------------------------------------


async def test_a_dry_run_reports_what_a_run_frees(
    rt: Runtime, registry_id: str, contract_number: int
) -> None:
    await push_image(rt, registry_id, "keep", "v1", [b"base", b"a"])
    await push_image(rt, registry_id, "drop", "v1", [b"base", b"bb" * 100])
    await rt.services.repositories.delete(owner(contract_number), registry_id, "drop")
    files = _files(rt.settings.data_dir)
    dry = await rt.services.gc.collect(registry_id, grace=ZERO, dry_run=True)
    assert _files(rt.settings.data_dir) == files
    real = await rt.services.gc.collect(registry_id, grace=ZERO)
    assert (dry.blobs_freed, dry.bytes_freed) == (real.blobs_freed, real.bytes_freed) == (2, dry.bytes_freed)
    assert dry.bytes_freed > 200


async def test_a_run_is_recorded_with_progress_and_metrics(rt: Runtime, registry_id: str) -> None:
    for i in range(7):
        await upload(rt, registry_id, "app", b"blob %d" % i)
    seen: list[Progress] = []
    before = gc_metrics.BLOBS_FREED.labels(registry_id)._value.get()
    report = await rt.services.gc.collect(registry_id, grace=ZERO, on_progress=seen.append)
    assert report.blobs_freed == 7
    assert gc_metrics.BLOBS_FREED.labels(registry_id)._value.get() == before + 7
    gauges = {g.name: g.samples for g in rt.db.read_sync(gc_metrics.gc_gauges)}
    assert [(s.labels, s.value) for s in gauges["cargobay_gc_last_run_success"]] == [
        ({"registry": registry_id}, 1)
    ]
    (finished,) = gauges["cargobay_gc_last_run_timestamp_seconds"]
    assert abs(finished.value - time.time()) < 60
    queues = {s.labels["queue"]: s.value for s in gauges["cargobay_gc_queue_rows"]}
    assert queues == {"blob_reviews": 0, "manifest_reviews": 0, "object_deletions": 0, "orphans": 0}
    assert [p.phase for p in seen][:1] == ["uploads"] and seen[-1].done == seen[-1].total
    assert {"uploads", "blobs", "objects", "sweep"} <= {p.phase for p in seen}
    run = rt.db.read_sync(lambda s: s.get(GcRun, report.run_id))
    assert (run.state, run.trigger, run.blobs_freed, run.bytes_freed) == (
        "succeeded",
        "cli",
        7,
        report.bytes_freed,
    )
    assert run.started_at is not None and run.finished_at is not None and run.eta_seconds is None


async def test_a_requested_run_is_queued_and_run_by_the_worker(
    rt: Runtime, registry_id: str, contract_number: int
) -> None:
    from cargobay.jobs.queue import JobQueue
    from cargobay.worker import JobRunner, build_jobs

    with pytest.raises(PermissionDenied):
        await rt.services.gc.request_run(member(contract_number), registry_id, dry_run=False)
    queued = await rt.services.gc.request_run(owner(contract_number), registry_id, dry_run=True)
    again = await rt.services.gc.request_run(owner(contract_number), registry_id, dry_run=True)
    assert queued.id == again.id and queued.state == "queued" and queued.trigger == "api"
    job = rt.db.read_sync(lambda s: s.scalars(select(Job).where(Job.kind == "gc.registry")).one())
    assert job.concurrency_key == f"gc.registry:{registry_id}"
    jobs = build_jobs(rt)
    await JobRunner(JobQueue(rt.db), jobs.handlers).run_until_idle()
    runs = await rt.services.gc.list_runs(member(contract_number), registry_id)
    assert [(r.id, r.state, r.dry_run) for r in runs] == [(queued.id, "succeeded", True)]
    assert (await rt.services.gc.get_run(member(contract_number), registry_id, queued.id)).finished_at
    with pytest.raises(NotFound):
        await rt.services.gc.get_run(member(contract_number), registry_id, queued.id + 100)


async def test_a_scheduled_window_runs_a_collection(rt: Runtime, registry_id: str) -> None:
    from cargobay.jobs.queue import JobQueue
    from cargobay.jobs.scheduler import Scheduler
    from cargobay.worker import JobRunner, build_jobs

    await upload(rt, registry_id, "app", b"left behind")

    def schedule(session):  # type: ignore[no-untyped-def]
        registry = session.get(Registry, registry_id)
        now = utcnow()
        registry.gc_days = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
        registry.gc_time = (now - timedelta(minutes=1)).strftime("%H:%M:%SZ")
        registry.gc_schedule_since = now - timedelta(days=1, minutes=5)

    rt.db.write_sync(schedule)
    jobs = build_jobs(rt)
    assert [w.kind for w in jobs.weekly] == ["gc.registry"]
    assert Scheduler(rt.db, jobs.periodic, weekly=jobs.weekly).tick()
    rt.services.gc.grace = ZERO  # what CARGOBAY_GC_GRACE_SECONDS=0 gives
    await JobRunner(JobQueue(rt.db), {"gc.registry": jobs.handlers["gc.registry"]}).run_until_idle()
    run = rt.db.read_sync(lambda s: s.scalars(select(GcRun)).one())
    assert (run.trigger, run.state, run.blobs_freed) == ("schedule", "succeeded", 1)
    assert blob_digests(rt.db, registry_id) == set()


# -- the sweep ----------------------------------------------------------------------------------------


async def test_the_sweep_deletes_objects_no_row_names_after_the_grace_period(
    rt: Runtime, registry_id: str
) -> None:
    store = rt.store
    image = await push_image(rt, registry_id, "app", "v1", [b"layer"])
    crash_leftover = f"{registry_id}/blobs/ab/{'ab' * 16}"
    await store.put(crash_leftover, b"committed, then the process died before the row")
    open_upload = await rt.services.uploads.start(registry_id, "app")

    async def body():  # type: ignore[no-untyped-def]
        yield b"half an upload"

    await rt.services.uploads.append(open_upload, body(), None, None)
    open_oid = open_upload.object_key.rsplit("/", 1)[1]
    beside_open = f"{registry_id}/uploads/{open_oid}.14-0a1b2c.pending"  # what a writer keeps (S3)
    await store.put(beside_open, b"half an upload")
    beside_gone = f"{registry_id}/uploads/{'cd' * 16}.5-0a1b2c.tail"  # its session is gone
    await store.put(beside_gone, b"tail of a session that ended in a crash")
    published_not_recorded = await rt.services.uploads.start(registry_id, "app")
    oid = published_not_recorded.object_key.rsplit("/", 1)[1]
    await store.put(f"{registry_id}/blobs/{oid[:2]}/{oid}", b"a finish that crashed before its row")

    first = await rt.services.gc.collect(registry_id, grace=HOUR)
    assert (first.orphans_found, first.orphans_deleted) == (2, 0)
    age_reviews(rt.db, 2 * HOUR)
    second = await rt.services.gc.collect(registry_id, grace=HOUR)
    assert (second.orphans_found, second.orphans_deleted) == (2, 2)
    assert await store.stat(crash_leftover) is None and await store.stat(beside_gone) is None
    assert await store.stat(beside_open) is not None
    assert await store.stat(f"{registry_id}/blobs/{oid[:2]}/{oid}") is not None
    finished = await rt.services.uploads.finish(
        open_upload, Digest.parse(sha256(b"half an upload")), None, None, None
    )
    assert finished.size == len(b"half an upload")  # the open upload's writer continues
    await store.delete(beside_open)  # a real writer drops its pending data as it commits
    assert await check_references_intact(rt) == len(image.blobs)
    third = await rt.services.gc.collect(registry_id, grace=HOUR)
    assert third.orphans_found == 0


async def test_a_deleted_registry_leaves_nothing_behind(
    rt: Runtime, registry_id: str, contract_number: int
) -> None:
    await push_image(rt, registry_id, "app", "v1", [b"layer a", b"layer b"])
    open_upload = await rt.services.uploads.start(registry_id, "app")

    async def body():  # type: ignore[no-untyped-def]
        yield b"half an upload"

    await rt.services.uploads.append(open_upload, body(), None, None)
    staging = rt.settings.data_dir / "storage" / "staging"
    assert [p for p in staging.rglob("*") if p.is_file()]  # the upload writer's data
    leftover = f"{registry_id}/blobs/ef/{'ef' * 16}"
    await rt.store.put(leftover, b"no row")
    await rt.services.registries.delete(owner(contract_number), registry_id)
    assert _files(rt.settings.data_dir) == {leftover}  # what rows named went before the answer
    assert [p for p in staging.rglob("*") if p.is_file()] == []  # discarded from the writer's state
    assert _count(rt.db, GcObjectDeletion) == 0
    report = await rt.services.gc.sweep_deleted_registries(grace=ZERO)
    assert report.orphans_deleted == 1 and _files(rt.settings.data_dir) == set()


async def test_objects_queued_before_a_crash_are_deleted_by_the_next_run(
    rt: Runtime, registry_id: str
) -> None:
    image = await push_image(rt, registry_id, "app", None, [b"to be freed"])
    await rt.services.manifests.delete(registry_id, "app", image.digest)

    from cargobay.db.queries import gc as gc_queries

    # the deletion transaction commits, then the process dies before deleting the objects
    result = await rt.db.write_raw(gc_queries.collect_blobs, registry_id, utcnow(), None, 100)
    assert len(result.freed) == 2 and _count(rt.db, GcObjectDeletion) == 2
    assert len(_files(rt.settings.data_dir)) == 2  # rows gone, bytes still there
    report = await rt.services.gc.collect(registry_id, grace=ZERO)
    assert report.objects_deleted == 2 and _files(rt.settings.data_dir) == set()
    assert _count(rt.db, GcObjectDeletion) == 0


# -- uploads racing a collection ----------------------------------------------------------------------


async def test_an_upload_of_a_digest_collected_meanwhile_stores_its_own_bytes(
    rt: Runtime, registry_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"stored, then collected while another upload finished"
    await upload(rt, registry_id, "first", data)
    from cargobay.services import uploads as uploads_module

    real_stored = uploads_module.blobs.stored

    async def stored_then_collected(db: Database, rid: str, digest: str) -> bool:
        found = await real_stored(db, rid, digest)
        age_reviews(rt.db, 2 * HOUR)
        await rt.services.gc.collect(registry_id, grace=HOUR)  # deletes it under the upload's feet
        return found

    monkeypatch.setattr(uploads_module.blobs, "stored", stored_then_collected)
    await upload(rt, registry_id, "second", data)
    monkeypatch.setattr(uploads_module.blobs, "stored", real_stored)
    row = rt.db.read_sync(lambda s: s.scalars(select(Blob)).one())
    read = b"".join([c async for c in rt.store.reader(row.object_key)])
    assert read == data


async def test_an_upload_that_expired_while_finishing_records_nothing(rt: Runtime, registry_id: str) -> None:
    session = await rt.services.uploads.start(registry_id, "app")
    data = b"late"

    async def body():  # type: ignore[no-untyped-def]
        yield data

    await rt.services.uploads.append(session, body(), None, None)
    rt.db.write_sync(lambda s: s.query(Upload).delete())  # expired by another process meanwhile
    with pytest.raises(UploadUnknown):
        await rt.services.uploads.finish(session, Digest.of(data), None, None, None)
    assert _count(rt.db, Blob) == 0 and _files(rt.settings.data_dir) == set()


@pytest.fixture
async def s3_rt(
    db: Database, db_url: str, tmp_path: Path, s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Runtime]:
    """A runtime whose blobs live in a bucket of their own on the session's versitygw (5 MiB parts)."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    store = open_store(s3_server.url(s3_server.new_bucket(), "p", part_size=str(MIN_PART)))
    try:
        yield assemble(Settings(data_dir=tmp_path, database_url=db_url), db, store, PlainSealer())
    finally:
        await store.close()


async def test_a_registry_delete_on_s3_aborts_its_open_multipart_uploads(
    s3_rt: Runtime, registry_id: str, contract_number: int
) -> None:
    """The outbox keeps an upload writer's state: the multipart upload and the pending object of an
    upload in progress go with the registry, though no listing could find the multipart upload."""
    rt, store = s3_rt, s3_rt.store
    assert isinstance(store, S3Store)
    await push_image(rt, registry_id, "app", "v1", [b"layer"])
    open_upload = await rt.services.uploads.start(registry_id, "app")

    async def body():  # type: ignore[no-untyped-def]
        yield b"x" * (MIN_PART + 1000)  # one part, and a pending object for the rest

    await rt.services.uploads.append(open_upload, body(), None, None)
    client, bucket = store.client, store.bucket
    assert client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    await rt.services.registries.delete(owner(contract_number), registry_id)
    assert not client.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert client.list_objects_v2(Bucket=bucket).get("KeyCount") == 0


async def test_a_collection_on_s3_deletes_the_freed_objects_in_batches(
    s3_rt: Runtime, registry_id: str, contract_number: int
) -> None:
    """A batch of freed blobs leaves the bucket in one DeleteObjects request, not a DeleteObject each
    (object stores answer each request in tens of milliseconds)."""
    rt, store = s3_rt, s3_rt.store
    assert isinstance(store, S3Store)
    await push_image(rt, registry_id, "keep", "v1", [b"kept layer"])
    await push_image(rt, registry_id, "drop", "v1", [b"dropped layer %d" % i for i in range(30)])
    await rt.services.repositories.delete(owner(contract_number), registry_id, "drop")
    calls = Calls(store)
    report = await rt.services.gc.collect(registry_id, grace=ZERO, sweep=False)
    assert report.blobs_freed == 31  # 30 layers and a config
    assert calls.names.count("delete_objects") == 1 and "delete_object" not in calls.names
    named = rt.db.read_sync(lambda s: set(s.scalars(select(Blob.object_key))))
    assert {key async for key in store.list(f"{registry_id}/")} == named
    assert await check_references_intact(rt) == 2
