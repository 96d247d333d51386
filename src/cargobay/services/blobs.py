"""Blobs of a repository: existence, reading (or where clients read them), unlinking and
cross-repository mounts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from cargobay.db.engine import Database, RawTx
from cargobay.db.queries import blobs, repositories
from cargobay.db.queries.blobs import BlobInfo
from cargobay.storage.base import BlobStore, Chunk, RedirectReads

__all__ = ["BlobInfo", "BlobService", "object_key", "staged_key"]


def object_key(registry_id: str, object_id: str) -> str:
    return f"{registry_id}/blobs/{object_id[:2]}/{object_id}"


def staged_key(registry_id: str, object_id: str) -> str:
    return f"{registry_id}/uploads/{object_id}"


class BlobService:
    def __init__(self, db: Database, store: BlobStore) -> None:
        self.db = db
        self.store = store
        # Only a driver asked to redirect, and never through the encryption wrapper (not a RedirectReads).
        self._redirects = store if isinstance(store, RedirectReads) and store.redirects else None

    async def stat(self, registry_id: str, repository: str, digest: str) -> BlobInfo | None:
        """A blob pushed or mounted into the repository (one indexed read, no ORM)."""
        return await blobs.in_repository(self.db, registry_id, repository, digest)

    def open(self, blob: BlobInfo, offset: int = 0, length: int | None = None) -> AsyncIterator[Chunk]:
        return self.store.reader(blob.object_key, offset, length)

    async def redirect(self, blob: BlobInfo) -> str | None:
        """A URL the client may read the blob's bytes from itself (the object store's), or None: serve
        them. Call it only for a caller allowed to read the blob: the URL is a credential."""
        if self._redirects is None:
            return None
        return await self._redirects.redirect_url(blob.object_key)

    async def unlink(self, registry_id: str, repository: str, digest: str) -> bool:
        """Remove the blob from the repository; its bytes are freed by garbage collection."""

        def work(tx: RawTx) -> bool:
            repository_id = repositories.find_id(tx, registry_id, repository)
            blob_id = blobs.id_of(tx, registry_id, digest)
            if repository_id is None or blob_id is None:
                return False
            return blobs.unlink(tx, repository_id, blob_id)

        return await self.db.write_raw(work)

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
            candidates = await blobs.holders(self.db, registry_id, digest)
            readable = next((blob for blob, holder in candidates if may_pull(holder)), None)
        if readable is None:
            return None
        found = readable

        def work(tx: RawTx) -> BlobInfo | None:
            if not blobs.exists(tx, found.id):  # removed since the read (garbage collection)
                return None
            blobs.link(tx, repositories.ensure_id(tx, registry_id, repository), found.id)
            return found

        return await self.db.write_raw(work)
