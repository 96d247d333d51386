"""Blobs and their links into repositories (a blob is readable in a repository only once pushed or
mounted there); the hot reads are single raw statements."""

from __future__ import annotations

from dataclasses import dataclass

from cargobay.db.engine import Database, RawTx
from cargobay.db.queries import gc, repositories
from cargobay.db.queries.registries import add_storage
from cargobay.db.types import utcnow


@dataclass(frozen=True, slots=True)
class BlobInfo:
    id: int
    digest: str
    size: int
    object_key: str


_IN_REPOSITORY = (
    "SELECT b.id, b.digest, b.size, b.object_key FROM repositories r "
    "JOIN repository_blobs rb ON rb.repository_id = r.id JOIN blobs b ON b.id = rb.blob_id "
    "WHERE r.registry_id = ? AND r.name = ? AND b.registry_id = ? AND b.digest = ?"
)
_HOLDERS = (  # the repositories a blob is in, for a mount without a source
    "SELECT b.id, b.digest, b.size, b.object_key, r.name FROM blobs b "
    "JOIN repository_blobs rb ON rb.blob_id = b.id JOIN repositories r ON r.id = rb.repository_id "
    "WHERE b.registry_id = ? AND b.digest = ? LIMIT 100"
)


async def in_repository(db: Database, registry_id: str, repository: str, digest: str) -> BlobInfo | None:
    """A blob pushed or mounted into the repository: one indexed read."""
    row = await db.fetch_one(_IN_REPOSITORY, registry_id, repository, registry_id, digest)
    return BlobInfo(*row) if row is not None else None


async def holders(db: Database, registry_id: str, digest: str) -> list[tuple[BlobInfo, str]]:
    """The blob with each repository (name) it is linked into, at most 100."""
    return [(BlobInfo(*row[:4]), str(row[4])) for row in await db.fetch_all(_HOLDERS, registry_id, digest)]


def exists(tx: RawTx, blob_id: int) -> bool:
    """Whether the blob is still stored; on PostgreSQL it then stays so until this transaction ends
    (a collection deleting it meanwhile waits, or has deleted it and this answers False)."""
    return tx.one(f"SELECT 1 FROM blobs WHERE id = ?{gc.share_lock(tx)}", blob_id) is not None


def id_of(tx: RawTx, registry_id: str, digest: str) -> int | None:
    row = tx.one("SELECT id FROM blobs WHERE registry_id = ? AND digest = ?", registry_id, digest)
    return int(row[0]) if row is not None else None


def link(tx: RawTx, repository_id: int, blob_id: int) -> None:
    """Make the blob readable in the repository: a reference change (its grace period starts again)."""
    now = utcnow()
    tx.run(
        "INSERT INTO repository_blobs (repository_id, blob_id, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (repository_id, blob_id) DO NOTHING",
        repository_id,
        blob_id,
        tx.timestamp(now),
    )
    gc.note_blobs(tx, [blob_id], now)


def unlink(tx: RawTx, repository_id: int, blob_id: int) -> bool:
    removed = (
        tx.run("DELETE FROM repository_blobs WHERE repository_id = ? AND blob_id = ?", repository_id, blob_id)
        > 0
    )
    if removed:
        gc.note_blobs(tx, [blob_id])
    return removed


def find_stored(tx: RawTx, registry_id: str, digest: str) -> BlobInfo | None:
    """The registry's blob of that digest, kept from collection until this transaction ends."""
    row = tx.one(
        "SELECT id, digest, size, object_key FROM blobs WHERE registry_id = ? AND digest = ?"
        + gc.share_lock(tx),
        registry_id,
        digest,
    )
    return BlobInfo(*row) if row is not None else None


def record(
    tx: RawTx, registry_id: str, repository: str, digest: str, size: int, key: str
) -> tuple[BlobInfo, bool]:
    """Insert the blob row (unless the digest is already stored) and link it into the repository.

    Returns the blob and whether this call created it (so the caller keeps or drops its object).
    """
    repository_id = repositories.ensure_id(tx, registry_id, repository)
    for _attempt in range(3):
        row = tx.one(
            "INSERT INTO blobs (registry_id, digest, size, object_key, created_at) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (registry_id, digest) DO NOTHING RETURNING id, digest, size, object_key",
            registry_id,
            digest,
            size,
            key,
            tx.timestamp(utcnow()),
        )
        if row is not None:
            blob = BlobInfo(*row)
            link(tx, repository_id, blob.id)  # a new blob is queued for review (an unfinished push)
            add_storage(tx, registry_id, size)  # last: see registries.add_storage
            return blob, True
        found = find_stored(tx, registry_id, digest)
        if found is not None:
            link(tx, repository_id, found.id)
            return found, False
        # collected between the two statements (PostgreSQL): insert again
    raise RuntimeError(f"blob {digest} kept conflicting with rows that vanished")


async def stored(db: Database, registry_id: str, digest: str) -> bool:
    """Whether the registry stores a blob of that digest (in any repository)."""
    return (
        await db.fetch_one("SELECT id FROM blobs WHERE registry_id = ? AND digest = ?", registry_id, digest)
        is not None
    )
