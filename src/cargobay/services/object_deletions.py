"""Deleting stored objects whose rows are gone: batched, a bounded number at once, never blocking.

The keys come from the ``gc_object_deletions`` outbox, written in the transaction that deleted the
rows; an object is deleted from the store first, then its outbox row, so a crash in between only
means deleting an absent object again (not an error).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Sequence

from cargobay.db.engine import Database
from cargobay.db.queries import gc_objects
from cargobay.db.queries.gc import FreedObject
from cargobay.faults import crash_point
from cargobay.services.blobs import object_key
from cargobay.storage.base import BlobStore, split_key

DELETE_CONCURRENCY = 32  # deletes in flight at once (object stores answer each in tens of ms)
DELETE_KEYS = 1000  # keys per ``delete_many`` call: what one S3 DeleteObjects request takes
BATCH = 500


async def delete_objects(
    store: BlobStore, objects: Sequence[FreedObject], concurrency: int = DELETE_CONCURRENCY
) -> None:
    """Delete the objects from the store, ``concurrency`` calls at a time.

    Objects go in batches of ``DELETE_KEYS`` through ``delete_many`` (on S3 one DeleteObjects request
    for up to 1,000 keys rather than a DeleteObject each; on files one worker thread per batch, off
    the event loop); what an upload left (its writer's state says where) goes one upload at a time.
    """
    if not objects:
        return
    slots = asyncio.Semaphore(concurrency)

    async def staged(item: FreedObject) -> None:
        async with slots:  # an upload's: what its writer left, and an object a crashed finish published
            namespace, object_id = split_key(item.key)
            final_key = object_key(namespace, object_id)
            await store.discard(final_key, json.loads(item.writer_state) if item.writer_state else None)
            await store.delete(final_key)

    async def batch(keys: Sequence[str]) -> None:
        async with slots:
            await store.delete_many(keys)

    keys = [item.key for item in objects if not item.staged]
    await asyncio.gather(
        *(batch(keys[start : start + DELETE_KEYS]) for start in range(0, len(keys), DELETE_KEYS)),
        *(staged(item) for item in objects if item.staged),
    )


async def delete_batch(db: Database, store: BlobStore, objects: Sequence[FreedObject]) -> int:
    """Delete the objects, then their outbox rows."""
    await delete_objects(store, objects)
    crash_point("gc.objects_deleted")
    await db.write_raw(gc_objects.forget_deletions, [item.deletion_id for item in objects])
    return len(objects)


async def drain(
    db: Database,
    store: BlobStore,
    registry_id: str | None,
    progress: Callable[[int], Awaitable[None]] | None = None,
) -> int:
    """Delete every object queued in the outbox (of one registry, or all); returns how many."""
    deleted = 0
    after = 0
    while batch := await gc_objects.pending_deletions(db, registry_id, after, BATCH):
        after = batch[-1].deletion_id
        deleted += await delete_batch(db, store, batch)
        if progress is not None:
            await progress(len(batch))
    return deleted
