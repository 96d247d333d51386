"""Blobs of a repository: existence, reading, unlinking and cross-repository mounts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargobay.db.engine import Database, RawTx
from cargobay.db.models import Blob, RepositoryBlob
from cargobay.db.types import utcnow
from cargobay.services import repositories
from cargobay.storage.base import BlobStore, Chunk


@dataclass(frozen=True, slots=True)
class BlobInfo:
    id: int
    digest: str
    size: int
    object_key: str


def object_key(registry_id: str, object_id: str) -> str:
    return f"{registry_id}/blobs/{object_id[:2]}/{object_id}"


def staged_key(registry_id: str, object_id: str) -> str:
    return f"{registry_id}/uploads/{object_id}"


_IN_REPOSITORY = (
    "SELECT b.id, b.digest, b.size, b.object_key FROM repositories r "
    "JOIN repository_blobs rb ON rb.repository_id = r.id JOIN blobs b ON b.id = rb.blob_id "
    "WHERE r.registry_id = ? AND r.name = ? AND b.registry_id = ? AND b.digest = ?"
)
_ANYWHERE = (  # the repositories a blob is in, for a mount without a source
    "SELECT b.id, b.digest, b.size, b.object_key, r.name FROM blobs b "
    "JOIN repository_blobs rb ON rb.blob_id = b.id JOIN repositories r ON r.id = rb.repository_id "
    "WHERE b.registry_id = ? AND b.digest = ? LIMIT 100"
)


def link(tx: RawTx, repository_id: int, blob_id: int) -> None:
    tx.run(
        "INSERT INTO repository_blobs (repository_id, blob_id, created_at) VALUES (?, ?, ?) "
        "ON CONFLICT (repository_id, blob_id) DO NOTHING",
        repository_id,
        blob_id,
        tx.timestamp(utcnow()),
    )


def record_blob(
    tx: RawTx, registry_id: str, repository: str, digest: str, size: int, key: str
) -> tuple[BlobInfo, bool]:
    """Insert the blob row (unless the digest is already stored) and link it into the repository.

    Returns the blob and whether this call created it (so the caller keeps or drops its object).
    """
    repository_id = repositories.ensure_id(tx, registry_id, repository)
    row = tx.one(
        "INSERT INTO blobs (registry_id, digest, size, object_key, created_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (registry_id, digest) DO NOTHING RETURNING id, digest, size, object_key",
        registry_id,
        digest,
        size,
        key,
        tx.timestamp(utcnow()),
    )
    created = row is not None
    if row is None:
        row = tx.one(
            "SELECT id, digest, size, object_key FROM blobs WHERE registry_id = ? AND digest = ?",
            registry_id,
            digest,
        )
        assert row is not None
    else:
        add_storage(tx, registry_id, size)
    blob = BlobInfo(*row)
    link(tx, repository_id, blob.id)
    return blob, created


def add_storage(tx: RawTx, registry_id: str, delta: int) -> None:
    if delta:
        tx.run(
            "UPDATE registries SET storage_bytes = storage_bytes + ?, storage_updated_at = ? WHERE id = ?",
            delta,
            tx.timestamp(utcnow()),
            registry_id,
        )


class BlobService:
    def __init__(self, db: Database, store: BlobStore) -> None:
        self.db = db
        self.store = store

    async def stat(self, registry_id: str, repository: str, digest: str) -> BlobInfo | None:
        """A blob pushed or mounted into the repository (one indexed read, no ORM)."""
        row = await self.db.fetch_one(_IN_REPOSITORY, registry_id, repository, registry_id, digest)
        return BlobInfo(*row) if row is not None else None

    def open(self, blob: BlobInfo, offset: int = 0, length: int | None = None) -> AsyncIterator[Chunk]:
        return self.store.reader(blob.object_key, offset, length)

    async def unlink(self, registry_id: str, repository: str, digest: str) -> bool:
        """Remove the blob from the repository; its bytes are freed by garbage collection."""

        def work(session: Session) -> bool:
            repo = repositories.find(session, registry_id, repository)
            if repo is None:
                return False
            blob_id = session.scalar(
                select(Blob.id).where(Blob.registry_id == registry_id, Blob.digest == digest)
            )
            if blob_id is None:
                return False
            link_row = session.get(RepositoryBlob, (repo.id, blob_id))
            if link_row is None:
                return False
            session.delete(link_row)
            return True

        return await self.db.write(work)

    async def mount(
        self,
        registry_id: str,
        repository: str,
        digest: str,
        source: str | None,
        may_pull: Callable[[str], bool],
    ) -> BlobInfo | None:
        """Link a blob from ``source`` (or, without one, any readable repository) into ``repository``."""

        readable: BlobInfo | None
        if source is not None:
            readable = await self.stat(registry_id, source, digest) if may_pull(source) else None
        else:
            candidates = await self.db.fetch_all(_ANYWHERE, registry_id, digest)
            readable = next((BlobInfo(*row[:4]) for row in candidates if may_pull(str(row[4]))), None)
        if readable is None:
            return None

        def work(tx: RawTx) -> BlobInfo | None:
            exists = tx.one("SELECT 1 FROM blobs WHERE id = ?", readable.id)
            if exists is None:  # removed since the read (garbage collection): nothing to mount
                return None
            link(tx, repositories.ensure_id(tx, registry_id, repository), readable.id)
            return readable

        return await self.db.write_raw(work)
