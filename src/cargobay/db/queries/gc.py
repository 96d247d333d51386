"""Garbage collection's rows: the review queues that track reference changes, the deletion
transactions that re-check references, the object-deletion outbox, the sweep's sightings, and runs.

Reference changes are recorded by the statements that make them (``note_*``), in the caller's
transaction: a blob is reviewed once the grace period has passed since its last change, never by
walking the store. On PostgreSQL the collector locks what it reviews with ``FOR UPDATE SKIP LOCKED``
and request paths lock what they are about to reference (``FOR SHARE``), so either the request waits
and then finds the row gone, or the collector skips the row; SQLite has one writer at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cargobay.db.engine import Database, RawTx
from cargobay.db.queries.registries import add_storage
from cargobay.db.types import utcnow

CHUNK = 500  # ids per IN list: far below SQLite's and PostgreSQL's parameter limits

KEEP = "keep"
DELETE = "delete"
UNTAGGED_POLICIES = (KEEP, DELETE)


def marks(n: int) -> str:
    return ", ".join("?" * n)


def chunks(values: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _lock(tx: RawTx, of: str | None = None) -> str:
    """Row locks the collector takes: skip what a request holds (PostgreSQL; SQLite has one writer)."""
    if tx.is_sqlite:
        return ""
    return f" FOR UPDATE OF {of} SKIP LOCKED" if of else " FOR UPDATE SKIP LOCKED"


def share_lock(tx: RawTx) -> str:
    """What a request locks before it references a row the collector may delete (PostgreSQL)."""
    return "" if tx.is_sqlite else " FOR SHARE"


# -- tracking reference changes -------------------------------------------------------------------

_UPSERT_BLOB = " ON CONFLICT (blob_id) DO UPDATE SET changed_at = excluded.changed_at"
_UPSERT_MANIFEST = " ON CONFLICT (manifest_id) DO UPDATE SET changed_at = excluded.changed_at"


def note_blobs(tx: RawTx, blob_ids: Iterable[int], now: datetime | None = None) -> None:
    """The references of these blobs changed now (uploaded, linked, unlinked, unreferenced)."""
    ids = sorted(set(blob_ids))
    stamp = tx.timestamp(now or utcnow())
    for part in chunks(ids):
        tx.run(
            "INSERT INTO gc_blob_reviews (blob_id, registry_id, changed_at) "
            f"SELECT id, registry_id, ? FROM blobs WHERE id IN ({marks(len(part))})" + _UPSERT_BLOB,
            stamp,
            *part,
        )


def postpone_blob_reviews(tx: RawTx, blob_ids: Iterable[int], now: datetime | None = None) -> None:
    """A manifest naming these blobs is being pushed: a review already queued starts its grace again."""
    ids = sorted(set(blob_ids))
    stamp = tx.timestamp(now or utcnow())
    for part in chunks(ids):
        tx.run(
            f"UPDATE gc_blob_reviews SET changed_at = ? WHERE blob_id IN ({marks(len(part))})",
            stamp,
            *part,
        )


def note_repository_blobs(tx: RawTx, repository_id: int, now: datetime | None = None) -> None:
    """The repository is going: every blob linked into it or named by its manifests changes now."""
    tx.run(
        "INSERT INTO gc_blob_reviews (blob_id, registry_id, changed_at) "
        "SELECT b.id, b.registry_id, ? FROM blobs b WHERE b.id IN ("
        "SELECT rb.blob_id FROM repository_blobs rb WHERE rb.repository_id = ? "
        "UNION SELECT mb.blob_id FROM manifest_blobs mb JOIN manifests m ON m.id = mb.manifest_id "
        "WHERE m.repository_id = ?)" + _UPSERT_BLOB,
        tx.timestamp(now or utcnow()),
        repository_id,
        repository_id,
    )


def note_manifests(tx: RawTx, manifest_ids: Iterable[int], now: datetime | None = None) -> None:
    """These manifests may have lost their last tag or parent now (or were pushed untagged)."""
    ids = sorted(set(manifest_ids))
    stamp = tx.timestamp(now or utcnow())
    for part in chunks(ids):
        tx.run(
            "INSERT INTO gc_manifest_reviews (manifest_id, registry_id, changed_at) "
            f"SELECT id, registry_id, ? FROM manifests WHERE id IN ({marks(len(part))})" + _UPSERT_MANIFEST,
            stamp,
            *part,
        )


def note_manifest_removal(
    tx: RawTx, manifest_id: int, repository_id: int, digest: str, subject: str | None
) -> None:
    """Before a manifest row goes: its blobs, its children and its subject may lose their last
    reference, and its referrers their subject."""
    now = utcnow()
    blob_ids = [
        int(r[0]) for r in tx.all("SELECT blob_id FROM manifest_blobs WHERE manifest_id = ?", manifest_id)
    ]
    note_blobs(tx, blob_ids, now)
    related = tx.all(
        "SELECT m.id FROM manifests m WHERE m.repository_id = ? AND m.id <> ? AND ("
        "m.digest IN (SELECT c.child_digest FROM manifest_children c WHERE c.manifest_id = ?) "
        "OR m.digest = ? OR m.subject_digest = ?)",
        repository_id,
        manifest_id,
        manifest_id,
        subject or "",
        digest,
    )
    note_manifests(tx, [int(r[0]) for r in related], now)


def note_object_deletions(tx: RawTx, registry_id: str, keys: Sequence[tuple[str, bool]]) -> list[int]:
    """Queue stored objects for deletion (``(key, staged)``); returns the outbox rows' ids."""
    ids: list[int] = []
    stamp = tx.timestamp(utcnow())
    for part in chunks(keys):
        values = ", ".join("(?, ?, ?, ?)" for _ in part)
        params = [p for key, staged in part for p in (registry_id, key, staged, stamp)]
        rows = tx.all(
            f"INSERT INTO gc_object_deletions (registry_id, object_key, staged, created_at) VALUES {values} "
            "RETURNING id",
            *params,
        )
        ids += [int(r[0]) for r in rows]
    return ids


# What upload sessions' writers keep (staging data, S3 multipart uploads), queued in the deletion
# outbox from the sessions' rows; parameters: staged (True), created_at, then the WHERE clause's.
QUEUE_UPLOAD_DATA = (
    "INSERT INTO gc_object_deletions (registry_id, object_key, staged, writer_state, created_at) "
    "SELECT registry_id, object_key, ?, storage_state, ? FROM uploads"
)


def note_registry_removal(tx: RawTx, registry_id: str) -> int:
    """Before a registry's rows go: queue every object its blobs and uploads name for deletion, in
    the same transaction (the rows of the outbox outlive the registry), and drop its reviews.
    Returns how many objects."""
    stamp = tx.timestamp(utcnow())
    tx.run("DELETE FROM gc_blob_reviews WHERE registry_id = ?", registry_id)
    tx.run("DELETE FROM gc_manifest_reviews WHERE registry_id = ?", registry_id)
    blobs = tx.run(
        "INSERT INTO gc_object_deletions (registry_id, object_key, staged, created_at) "
        "SELECT registry_id, object_key, ?, ? FROM blobs WHERE registry_id = ?",
        False,
        stamp,
        registry_id,
    )
    uploads = tx.run(f"{QUEUE_UPLOAD_DATA} WHERE registry_id = ?", True, stamp, registry_id)
    return blobs + uploads


# -- collecting blobs ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FreedObject:
    deletion_id: int  # its row in the outbox
    key: str
    staged: bool = False  # an upload's: ``key`` is ``{registry}/uploads/{object id}``
    writer_state: str | None = None  # the upload writer's last state (JSON), to discard what it left


@dataclass(frozen=True, slots=True)
class BlobBatch:
    """One deletion transaction's outcome. ``last`` is the keyset position to continue after."""

    examined: int
    kept: int  # still referenced: left the queue
    skipped: int  # locked by a request (PostgreSQL): reviewed again by a later run
    freed: tuple[FreedObject, ...]
    freed_bytes: int
    last: tuple[Any, int] | None


def _after(after: tuple[Any, int] | None, id_column: str) -> tuple[str, list[Any]]:
    if after is None:
        return "", []
    return f" AND (changed_at > ? OR (changed_at = ? AND {id_column} > ?))", [after[0], after[0], after[1]]


def collect_blobs(
    tx: RawTx, registry_id: str, cutoff: datetime, after: tuple[Any, int] | None, limit: int
) -> BlobBatch:
    """Review up to ``limit`` blobs whose last reference change is at or before ``cutoff``.

    In this one transaction: lock the review rows and the blobs (skipping what a request holds),
    re-check that no manifest references each blob, drop the referenced ones from the queue, and
    delete the rest (their repository links and reviews go by cascade), queueing their objects in the
    outbox and counting their sizes off the registry's storage. The bytes go after the commit.
    """
    extra, params = _after(after, "blob_id")
    rows = tx.all(
        "SELECT changed_at, blob_id FROM gc_blob_reviews WHERE registry_id = ? AND changed_at <= ?"
        f"{extra} ORDER BY changed_at, blob_id LIMIT ?{_lock(tx)}",
        registry_id,
        tx.timestamp(cutoff),
        *params,
        limit,
    )
    if not rows:
        return BlobBatch(0, 0, 0, (), 0, None)
    ids = [int(r[1]) for r in rows]
    _drop_vanished(tx, "gc_blob_reviews", "blob_id", "blobs", ids)
    blobs = {
        int(r[0]): (int(r[1]), str(r[2]))
        for r in tx.all(
            f"SELECT id, size, object_key FROM blobs WHERE id IN ({marks(len(ids))}){_lock(tx)}", *ids
        )
    }
    locked = sorted(blobs)
    referenced: set[int] = set()
    if locked:
        referenced = {
            int(r[0])
            for r in tx.all(
                f"SELECT DISTINCT blob_id FROM manifest_blobs WHERE blob_id IN ({marks(len(locked))})",
                *locked,
            )
        }
    kept = [i for i in locked if i in referenced]
    garbage = [i for i in locked if i not in referenced]
    if kept:
        tx.run(f"DELETE FROM gc_blob_reviews WHERE blob_id IN ({marks(len(kept))})", *kept)
    freed: tuple[FreedObject, ...] = ()
    freed_bytes = 0
    if garbage:
        keys = [blobs[i][1] for i in garbage]
        outbox = note_object_deletions(tx, registry_id, [(key, False) for key in keys])
        freed = tuple(FreedObject(d, key) for d, key in zip(outbox, keys, strict=True))
        tx.run(f"DELETE FROM gc_blob_reviews WHERE blob_id IN ({marks(len(garbage))})", *garbage)
        tx.run(f"DELETE FROM blobs WHERE id IN ({marks(len(garbage))})", *garbage)
        freed_bytes = sum(blobs[i][0] for i in garbage)
        add_storage(tx, registry_id, -freed_bytes)
    last = (rows[-1][0], int(rows[-1][1]))
    return BlobBatch(len(rows), len(kept), len(ids) - len(locked), freed, freed_bytes, last)


def _drop_vanished(tx: RawTx, queue: str, id_column: str, table: str, ids: Sequence[int]) -> None:
    """Reviews whose row is gone (a repository's manifests, a registry): nothing to review."""
    present = {int(r[0]) for r in tx.all(f"SELECT id FROM {table} WHERE id IN ({marks(len(ids))})", *ids)}
    vanished = [i for i in ids if i not in present]
    if vanished:
        tx.run(f"DELETE FROM {queue} WHERE {id_column} IN ({marks(len(vanished))})", *vanished)


@dataclass(frozen=True, slots=True)
class Estimate:
    items: int
    bytes: int


async def blob_candidates(db: Database, registry_id: str, cutoff: datetime) -> Estimate:
    """What a collection would free now (a dry run): due, unreferenced blobs and their sizes."""
    row = await db.fetch_one(
        "SELECT COUNT(*), COALESCE(SUM(b.size), 0) FROM gc_blob_reviews r JOIN blobs b ON b.id = r.blob_id "
        "WHERE r.registry_id = ? AND r.changed_at <= ? "
        "AND NOT EXISTS (SELECT 1 FROM manifest_blobs mb WHERE mb.blob_id = r.blob_id)",
        registry_id,
        db.timestamp(cutoff),
    )
    assert row is not None
    return Estimate(int(row[0]), int(row[1]))


async def blobs_due(db: Database, registry_id: str, cutoff: datetime, after: tuple[Any, int] | None) -> bool:
    """Whether a blob review is due (after the keyset position ``after``): one indexed read."""
    return await _due(db, "gc_blob_reviews", "blob_id", registry_id, cutoff, after)


async def manifests_due(
    db: Database, registry_id: str, cutoff: datetime, after: tuple[Any, int] | None
) -> bool:
    return await _due(db, "gc_manifest_reviews", "manifest_id", registry_id, cutoff, after)


async def _due(
    db: Database,
    table: str,
    id_column: str,
    registry_id: str,
    cutoff: datetime,
    after: tuple[Any, int] | None,
) -> bool:
    extra, params = _after(after, id_column)
    row = await db.fetch_one(
        f"SELECT 1 FROM {table} WHERE registry_id = ? AND changed_at <= ?{extra} LIMIT 1",
        registry_id,
        db.timestamp(cutoff),
        *params,
    )
    return row is not None


async def due_blob_reviews(db: Database, registry_id: str, cutoff: datetime) -> int:
    row = await db.fetch_one(
        "SELECT COUNT(*) FROM gc_blob_reviews WHERE registry_id = ? AND changed_at <= ?",
        registry_id,
        db.timestamp(cutoff),
    )
    return int(row[0]) if row is not None else 0


# -- collecting untagged manifests ------------------------------------------------------------------

# Kept: tagged, listed by an index of its repository, the subject of a referrer there, or a referrer
# whose subject is there (a signature lives as long as what it signs).
_DANGLING = (
    "NOT EXISTS (SELECT 1 FROM tags t WHERE t.manifest_id = m.id) "
    "AND NOT EXISTS (SELECT 1 FROM manifest_children c JOIN manifests p ON p.id = c.manifest_id "
    "WHERE p.repository_id = m.repository_id AND c.child_digest = m.digest) "
    "AND NOT EXISTS (SELECT 1 FROM manifests r WHERE r.repository_id = m.repository_id "
    "AND r.subject_digest = m.digest AND r.id <> m.id) "
    "AND (m.subject_digest IS NULL OR NOT EXISTS (SELECT 1 FROM manifests s "
    "WHERE s.repository_id = m.repository_id AND s.digest = m.subject_digest AND s.id <> m.id))"
)


@dataclass(frozen=True, slots=True)
class ManifestBatch:
    examined: int
    kept: int
    skipped: int
    deleted: int
    deleted_bytes: int
    last: tuple[Any, int] | None


def collect_manifests(
    tx: RawTx, registry_id: str, cutoff: datetime, after: tuple[Any, int] | None, limit: int
) -> ManifestBatch:
    """Review up to ``limit`` manifests whose last change is at or before ``cutoff``; in this one
    transaction, delete those nothing keeps (see ``_DANGLING``), queueing their blobs, children,
    subject and referrers for review, and drop the kept ones from the queue."""
    extra, params = _after(after, "manifest_id")
    rows = tx.all(
        "SELECT changed_at, manifest_id FROM gc_manifest_reviews WHERE registry_id = ? AND changed_at <= ?"
        f"{extra} ORDER BY changed_at, manifest_id LIMIT ?{_lock(tx)}",
        registry_id,
        tx.timestamp(cutoff),
        *params,
        limit,
    )
    if not rows:
        return ManifestBatch(0, 0, 0, 0, 0, None)
    ids = [int(r[1]) for r in rows]
    _drop_vanished(tx, "gc_manifest_reviews", "manifest_id", "manifests", ids)
    locked = {
        int(r[0])
        for r in tx.all(f"SELECT id FROM manifests WHERE id IN ({marks(len(ids))}){_lock(tx)}", *ids)
    }
    dangling = []
    if locked:
        dangling = [
            (int(r[0]), int(r[1]), str(r[2]), r[3], int(r[4]))
            for r in tx.all(
                "SELECT m.id, m.repository_id, m.digest, m.subject_digest, m.size FROM manifests m "
                f"WHERE m.id IN ({marks(len(locked))}) AND {_DANGLING}",
                *sorted(locked),
            )
        ]
    gone = {d[0] for d in dangling}
    kept = sorted(locked - gone)
    if kept:
        tx.run(f"DELETE FROM gc_manifest_reviews WHERE manifest_id IN ({marks(len(kept))})", *kept)
    size = 0
    for manifest_id, repository_id, digest, subject, manifest_size in dangling:
        note_manifest_removal(tx, manifest_id, repository_id, digest, subject)
        tx.run("DELETE FROM gc_manifest_reviews WHERE manifest_id = ?", manifest_id)
        tx.run("DELETE FROM manifests WHERE id = ?", manifest_id)
        size += manifest_size
    add_storage(tx, registry_id, -size)
    last = (rows[-1][0], int(rows[-1][1]))
    return ManifestBatch(len(rows), len(kept), len(ids) - len(locked), len(dangling), size, last)


async def manifest_candidates(db: Database, registry_id: str, cutoff: datetime) -> Estimate:
    row = await db.fetch_one(
        "SELECT COUNT(*), COALESCE(SUM(m.size), 0) FROM gc_manifest_reviews q "
        "JOIN manifests m ON m.id = q.manifest_id "
        f"WHERE q.registry_id = ? AND q.changed_at <= ? AND {_DANGLING}",
        registry_id,
        db.timestamp(cutoff),
    )
    assert row is not None
    return Estimate(int(row[0]), int(row[1]))


async def due_manifest_reviews(db: Database, registry_id: str, cutoff: datetime) -> int:
    row = await db.fetch_one(
        "SELECT COUNT(*) FROM gc_manifest_reviews WHERE registry_id = ? AND changed_at <= ?",
        registry_id,
        db.timestamp(cutoff),
    )
    return int(row[0]) if row is not None else 0
