"""Upload sessions: open, append chunks, finish with a digest check, cancel, expire.

The staged object's size is the upload offset. The running SHA-256 state lives in the process
that received the previous chunk; when a chunk lands elsewhere (another worker or node, or after a
restart) the digest is re-derived from the staged bytes once, at finish — never per chunk.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import anyio.to_thread

from cargobay.db.engine import Database, RawTx
from cargobay.db.queries import blobs, repositories, uploads
from cargobay.db.types import utcnow
from cargobay.domain.digests import Digest, Hasher, new_hasher
from cargobay.domain.errors import DigestMismatch, InvalidUpload, RangeMismatch, UploadUnknown
from cargobay.logs import get_logger
from cargobay.services.blobs import BlobInfo, object_key, staged_key
from cargobay.storage.base import BlobStore, Chunk
from cargobay.storage.streams import SerialOffload, rechunk

log = get_logger("cargobay.uploads")


@dataclass(frozen=True, slots=True)
class UploadInfo:
    id: str
    registry_id: str
    repository: str
    object_key: str


@dataclass(slots=True)
class _RunningHash:
    offset: int
    hasher: Hasher


class UploadTooLarge(Exception):
    pass


class UploadService:
    def __init__(self, db: Database, store: BlobStore, expiry_seconds: int) -> None:
        self.db = db
        self.store = store
        self.expiry = timedelta(seconds=expiry_seconds)
        self._hashes: dict[str, _RunningHash] = {}
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    def _lock(self, upload_id: str) -> asyncio.Lock:
        lock = self._locks.get(upload_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[upload_id] = lock
        return lock

    # -- sessions ---------------------------------------------------------------------------
    async def start(self, registry_id: str, repository: str) -> UploadInfo:
        upload_id = str(uuid.uuid4())
        key = staged_key(registry_id, upload_id.replace("-", ""))

        await self.db.write_raw(uploads.insert, upload_id, registry_id, repository, key)
        self._hashes[upload_id] = _RunningHash(0, new_hasher("sha256"))
        return UploadInfo(upload_id, registry_id, repository, key)

    async def find(self, registry_id: str, repository: str, upload_id: str) -> UploadInfo:
        """The session, or BLOB_UPLOAD_UNKNOWN (also for another repository's or an expired id)."""
        try:
            uuid.UUID(upload_id)
        except ValueError:
            raise UploadUnknown(upload_id) from None

        key = await uploads.live_object_key(
            self.db, upload_id, registry_id, repository, utcnow() - self.expiry
        )
        if key is None:
            raise UploadUnknown(upload_id)
        return UploadInfo(upload_id, registry_id, repository, key)

    async def size(self, upload: UploadInfo) -> int:
        return await self.store.staged_size(upload.object_key) or 0

    # -- data -------------------------------------------------------------------------------
    async def append(
        self,
        upload: UploadInfo,
        chunks: AsyncIterable[bytes],
        content_range: tuple[int, int] | None,
        content_length: int | None,
    ) -> int:
        async with self._lock(upload.id):
            return await self._append_locked(upload, chunks, content_range, content_length)

    async def _append_locked(
        self,
        upload: UploadInfo,
        chunks: AsyncIterable[bytes],
        content_range: tuple[int, int] | None,
        content_length: int | None,
    ) -> int:
        current = await self.size(upload)
        expected = content_length
        if content_range is not None:
            start, end = content_range
            if start != current:
                raise RangeMismatch(
                    upload.id, current, f"chunk starts at {start}, the upload is at {current}"
                )
            declared = end - start + 1
            if content_length is not None and content_length != declared:
                raise RangeMismatch(
                    upload.id,
                    current,
                    f"Content-Range covers {declared} bytes but Content-Length is {content_length}",
                    report_offset=False,
                )
            expected = declared
        running = self._hashes.get(upload.id)
        hasher = running.hasher.copy() if running is not None and running.offset == current else None
        counter = _Counter()
        try:
            new_size = await self.store.append(upload.object_key, _hashed(chunks, hasher, counter, expected))
        except BaseException:
            await self._rollback(upload, current)
            raise
        if expected is not None and counter.count != expected:
            await self._rollback(upload, current)
            raise InvalidUpload(f"received {counter.count} bytes but {expected} were announced")
        if hasher is not None:
            self._hashes[upload.id] = _RunningHash(new_size, hasher)
        else:
            self._hashes.pop(upload.id, None)
        await self.db.write_raw(uploads.touch, upload.id, new_size)
        return new_size

    async def _rollback(self, upload: UploadInfo, size: int) -> None:
        """Cut a failed chunk off so the session stays usable at its previous offset."""
        try:
            await self.store.truncate(upload.object_key, size)
        except Exception:
            if size == 0:
                await self.store.discard(upload.object_key)
        self._hashes.pop(upload.id, None)

    async def finish(
        self,
        upload: UploadInfo,
        digest: Digest,
        chunks: AsyncIterable[bytes] | None,
        content_range: tuple[int, int] | None,
        content_length: int | None,
    ) -> BlobInfo:
        async with self._lock(upload.id):
            if chunks is not None:
                await self._append_locked(upload, chunks, content_range, content_length)
            size = await self.store.staged_size(upload.object_key)
            if size is None:  # nothing was ever sent: an empty blob
                size = await self.store.append(upload.object_key, _empty())
            actual = await self._digest_of(upload, digest.algorithm, size)
            if actual != digest.hex:
                raise DigestMismatch(str(digest), f"{digest.algorithm}:{actual}")
            blob = await self._commit(upload, str(digest), size)
            self._hashes.pop(upload.id, None)
            return blob

    async def _digest_of(self, upload: UploadInfo, algorithm: str, size: int) -> str:
        running = self._hashes.get(upload.id)
        if algorithm == "sha256" and running is not None and running.offset == size:
            return running.hasher.hexdigest()
        hasher = new_hasher(algorithm)
        async for block in self.store.staged_reader(upload.object_key):
            await _update(hasher, block)
        return hasher.hexdigest()

    async def _commit(self, upload: UploadInfo, digest: str, size: int) -> BlobInfo:
        """Record the blob, linking the stored one when the registry holds the digest already.

        The session's row names the staged (then published) object until the blob's row does: both
        change in one transaction, which records nothing if the session expired meanwhile. So the
        collector's sweep never sees a published object that a row is about to name, and a blob the
        collector deleted just before is stored again from this upload's bytes.
        """
        object_id = upload.object_key.rsplit("/", 1)[1]
        final_key = object_key(upload.registry_id, object_id)
        if await blobs.stored(self.db, upload.registry_id, digest):
            linked = await self._link_stored(upload, digest)
            if linked is not None:
                await self.store.discard(upload.object_key)
                return linked
        await self.store.commit(upload.object_key, final_key)

        def work(tx: RawTx) -> tuple[BlobInfo, bool] | None:
            if not uploads.forget(tx, upload.id):
                return None
            return blobs.record(tx, upload.registry_id, upload.repository, digest, size, final_key)

        recorded = await self.db.write_raw(work)
        if recorded is None:
            await self.store.delete(final_key)
            raise UploadUnknown(upload.id)
        blob, created = recorded
        if not created:
            await self.store.delete(final_key)  # another upload of the same digest won the race
        return blob

    async def _link_stored(self, upload: UploadInfo, digest: str) -> BlobInfo | None:
        """Link the registry's blob of ``digest`` into the repository and end the session; None when
        garbage collection removed the blob since it was seen (then this upload's bytes are kept)."""

        def work(tx: RawTx) -> BlobInfo | None:
            found = blobs.find_stored(tx, upload.registry_id, digest)
            if found is None:
                return None
            if not uploads.forget(tx, upload.id):
                raise UploadUnknown(upload.id)
            blobs.link(tx, repositories.ensure_id(tx, upload.registry_id, upload.repository), found.id)
            return found

        try:
            return await self.db.write_raw(work)
        except UploadUnknown:
            await self.store.discard(upload.object_key)
            raise

    async def monolithic(
        self,
        registry_id: str,
        repository: str,
        digest: Digest,
        chunks: AsyncIterable[bytes],
        content_length: int | None,
    ) -> BlobInfo:
        upload = await self.start(registry_id, repository)
        try:
            return await self.finish(upload, digest, chunks, None, content_length)
        except BaseException:
            await self.cancel(upload)
            raise

    async def cancel(self, upload: UploadInfo) -> None:
        async with self._lock(upload.id):
            await self.store.discard(upload.object_key)
            await self.db.write_raw(uploads.forget, upload.id)
            self._hashes.pop(upload.id, None)

    async def expire(self) -> int:
        """Drop sessions idle for longer than the expiry, and staged bytes no session owns."""
        expired = await uploads.idle_since(self.db, utcnow() - self.expiry)
        for upload_id, key in expired:
            async with self._lock(upload_id):
                await self.store.discard(key)
                await self.db.write_raw(uploads.forget, upload_id)
                self._hashes.pop(upload_id, None)
        if expired:
            log.info("uploads_expired", count=len(expired))
        return len(expired)


class _Counter:
    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


async def _update(hasher: Hasher, block: Chunk) -> None:
    if len(block) >= 256 * 1024:
        await anyio.to_thread.run_sync(hasher.update, block)
    else:
        hasher.update(block)


async def _hashed(
    chunks: AsyncIterable[bytes], hasher: Hasher | None, counter: _Counter, limit: int | None
) -> AsyncIterator[bytes]:
    """Blocks of the body, counted and (when a running hash exists) hashed on a thread of their
    own, so receiving, hashing and storing overlap."""
    hashing = SerialOffload("cargobay-hash")
    try:
        async for block in rechunk(chunks):
            counter.count += len(block)
            if limit is not None and counter.count > limit:
                raise InvalidUpload(f"body is longer than the announced {limit} bytes")
            if hasher is not None:
                await hashing.submit(hasher.update, block)
            yield block
        await hashing.drain()
    finally:
        await hashing.close()


async def _empty() -> AsyncIterator[bytes]:
    empty: tuple[bytes, ...] = ()
    for block in empty:
        yield block
