"""The sweep: a paced listing of the blob store, the only place anything lists keys. An object that
no row names (a blob committed just before a crash, what a deleted registry left) is recorded when
first seen, and deleted once it is still unnamed after the grace period.

Objects are named by their blob's row (``blobs.object_key``), or by the upload session they come
from until the transaction that records the blob ends the session: a writer's published object
(``{registry}/blobs/…/{object id}``, the object id is the session's id) and what a writer keeps
beside it until commit (``{registry}/uploads/{object id}.…``: S3 pending data, sealed tails). A
session's row exists before any of its bytes, so an object unnamed now never becomes named. What a
writer keeps outside the listing (a staging file, an S3 multipart upload) goes with its session:
at finish, cancel, expiry and registry delete, from the state its row holds.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from cargobay.db.engine import Database
from cargobay.db.queries import gc_objects
from cargobay.db.queries.gc import FreedObject
from cargobay.db.types import utcnow
from cargobay.faults import crash_point
from cargobay.services import object_deletions
from cargobay.services.gc_runs import Tracker
from cargobay.storage.base import BlobStore, split_key

SWEEP_BATCH = 500


class Sweep:
    def __init__(self, db: Database, store: BlobStore, keys_per_second: float) -> None:
        self.db = db
        self.store = store
        self.keys_per_second = keys_per_second

    async def run(
        self, prefix: str, grace: timedelta, dry_run: bool, tracker: Tracker, only_missing: bool = False
    ) -> None:
        """List ``prefix`` (paced) and delete what no row names once it stays unnamed for ``grace``;
        ``only_missing``: only objects of namespaces whose registry row is gone."""
        started = utcnow()
        pace = _Pace(self.keys_per_second)
        seen: set[str] = set()
        batch: list[str] = []
        async for key in self.store.list(prefix):
            batch.append(key)
            if len(batch) >= SWEEP_BATCH:
                seen |= await self._sweep_batch(batch, grace, dry_run, tracker, only_missing)
                await pace.wait(len(batch))
                batch = []
        if batch:
            seen |= await self._sweep_batch(batch, grace, dry_run, tracker, only_missing)
            await pace.wait(len(batch))
        if not dry_run and seen and await gc_objects.any_sighted(self.db, seen):
            await self.db.write_raw(gc_objects.forget_vanished_orphans, sorted(seen), started)

    async def _sweep_batch(
        self, keys: list[str], grace: timedelta, dry_run: bool, tracker: Tracker, only_missing: bool
    ) -> set[str]:
        report = tracker.report
        parsed: list[tuple[str, str, str, str]] = []  # key, namespace, kind, object id
        for key in keys:
            try:
                namespace, object_id = split_key(key)
            except ValueError:
                continue
            parts = key.split("/")
            kind = parts[1] if len(parts) > 2 else ""
            parsed.append(
                (key, namespace, kind, object_id.split(".", 1)[0] if kind == "uploads" else object_id)
            )
        present = await gc_objects.registries_present(self.db, {p[1] for p in parsed})
        if only_missing:
            parsed = [p for p in parsed if p[1] not in present]
        live = [p for p in parsed if p[1] in present]
        # Sessions first, blob rows second: a session ends in the transaction that records its blob,
        # so an object is seen named by one or the other (read the other way round, an upload that
        # finished between the two reads would look unnamed).
        upload_ids = {
            oid: uid
            for _key, _ns, kind, oid in live
            if kind in ("blobs", "uploads") and (uid := gc_objects.upload_id_of(oid))
        }
        uploads = await gc_objects.live_uploads(self.db, list(upload_ids.values())) if upload_ids else set()
        blob_keys = [key for key, _ns, kind, _oid in live if kind == "blobs"]
        named_blobs = await gc_objects.named_blob_keys(self.db, blob_keys) if blob_keys else set()

        def named(key: str, namespace: str, kind: str, object_id: str) -> bool:
            if namespace not in present:
                return False
            in_session = upload_ids.get(object_id) in uploads
            return (kind == "uploads" and in_session) or (
                kind == "blobs" and (key in named_blobs or in_session)
            )

        orphans = [(key, False, ns) for key, ns, kind, oid in parsed if not named(key, ns, kind, oid)]
        report.orphans_found += len(orphans)
        await tracker.advance(len(keys))
        if dry_run:
            return {p[1] for p in parsed}
        names = [key for key, ns, kind, oid in parsed if named(key, ns, kind, oid)]
        renamed = await gc_objects.sighted(self.db, names, False) if names else set()
        if orphans or renamed:  # reads decide; a sweep that finds nothing writes nothing
            forget = [(key, False) for key in sorted(renamed)]
            due = await self.db.write_raw(gc_objects.sight_orphans, orphans, forget, grace)
            if due:
                crash_point("gc.sweep_due")
                await object_deletions.delete_objects(self.store, [FreedObject(0, k) for k, _s in due])
                await self.db.write_raw(gc_objects.forget_orphans, due)
                report.orphans_deleted += len(due)
        return {p[1] for p in parsed}


class _Pace:
    """At most ``rate`` keys a second, on average since the start (0: no limit)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.start = time.monotonic()
        self.count = 0

    async def wait(self, keys: int) -> None:
        self.count += keys
        if self.rate <= 0:
            return
        ahead = self.count / self.rate - (time.monotonic() - self.start)
        if ahead > 0:
            await asyncio.sleep(ahead)
