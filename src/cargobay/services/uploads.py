"""Upload sessions: open, write chunks through a storage writer, finish with a digest check, cancel, expire.

The upload's row holds all a request needs to take the next chunk: the size (the upload offset),
the storage writer's state (e.g. a multipart upload and its parts) and the running digest's state.
So any process (worker or node) continues an upload, and nothing written is ever read again. A
chunk is recorded only if the row still holds the size it started from: a chunk that fails, or that
lost a race with another request on the same upload, leaves the upload at its previous offset.
"""

from __future__ import annotations

import asyncio
import json
import uuid
import weakref
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import anyio.to_thread

from cargobay.db.engine import Database, RawTx
from cargobay.db.queries import blobs, gc_objects, repositories, uploads
from cargobay.db.types import utcnow
from cargobay.domain.digests import Digest, Hasher, new_hasher
from cargobay.domain.errors import DigestMismatch, InvalidUpload, RangeMismatch, UploadUnknown
from cargobay.domain.resumable_hash import ResumableHash
from cargobay.logs import get_logger
from cargobay.services.blobs import BlobInfo, object_key, staged_key
from cargobay.storage.base import BlobStore, BlobWriter, Chunk, WriterBusy, WriterLost, WriterState
from cargobay.storage.streams import SerialOffload, closing, rechunk

log = get_logger("cargobay.uploads")


@dataclass(frozen=True, slots=True)
class UploadInfo:
    id: str
    registry_id: str
    repository: str
    object_key: str  # where the release before writers staged the bytes: {registry}/uploads/{oid}

    @property
    def final_key(self) -> str:
        """Where the blob's object is published (the writer's key)."""
        return object_key(self.registry_id, self.object_key.rsplit("/", 1)[1])


@dataclass(frozen=True, slots=True)
class _Recorded:
    """An upload's row as a chunk starts: what the chunk continues from."""

    size: int
    storage: WriterState | None
    hash: bytes | None


class UploadTooLarge(Exception):
    pass


class UploadService:
    def __init__(self, db: Database, store: BlobStore, expiry_seconds: int) -> None:
        self.db = db
        self.store = store
        self.expiry = timedelta(seconds=expiry_seconds)
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
        return UploadInfo(upload_id, registry_id, repository, key)

    async def find(self, registry_id: str, repository: str, upload_id: str) -> UploadInfo:
        """The session, or BLOB_UPLOAD_UNKNOWN (also for another repository's or an expired id, and for
        one begun by the release before writers: expiry drops its bytes)."""
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
        size = await uploads.size_of(self.db, upload.id)
        if size is None:
            raise UploadUnknown(upload.id)
        return size

    async def _recorded(self, upload: UploadInfo) -> _Recorded:
        row = await uploads.recorded(self.db, upload.id)
        if row is None:
            raise UploadUnknown(upload.id)
        state = json.loads(row.storage_state) if row.storage_state else None
        return _Recorded(row.size, state, row.hash_state)

    # -- data -------------------------------------------------------------------------------
    async def append(
        self,
        upload: UploadInfo,
        chunks: AsyncIterable[bytes],
        content_range: tuple[int, int] | None,
        content_length: int | None,
    ) -> int:
        async with self._lock(upload.id), self._writer(upload) as (writer, hasher, recorded):
            await self._receive(upload, writer, hasher, recorded, chunks, content_range, content_length)
            state = await writer.suspend()
            stored = await self.db.write_raw(
                uploads.record_chunk, upload.id, recorded.size, writer.size, json.dumps(state), hasher.state()
            )
            if not stored:  # another request recorded a chunk meanwhile: this one did not happen
                raise _raced(upload, await self.size(upload))
            return writer.size

    async def finish(
        self,
        upload: UploadInfo,
        digest: Digest,
        chunks: AsyncIterable[bytes] | None,
        content_range: tuple[int, int] | None,
        content_length: int | None,
    ) -> BlobInfo:
        async with self._lock(upload.id):
            try:
                async with self._writer(upload, at_finish=True) as (writer, hasher, recorded):
                    if chunks is not None:
                        await self._receive(
                            upload, writer, hasher, recorded, chunks, content_range, content_length
                        )
                    if digest.algorithm == hasher.algorithm and hasher.hexdigest() != digest.hex:
                        raise DigestMismatch(str(digest), f"{digest.algorithm}:{hasher.hexdigest()}")
                    return await self._commit(upload, writer, digest)
            except _Published:
                return await self._record_published(upload, digest)
            except _Dropped as dropped:
                return await self._link_dropped(upload, digest, dropped.recorded, chunks)

    async def _record_published(self, upload: UploadInfo, digest: Digest) -> BlobInfo:
        """A finish that crashed after publishing the object, before recording the blob: the object
        is checked by reading it (this once; its running digest was never recorded) and recorded."""
        final_key = upload.final_key
        actual = await self._digest_of(final_key, digest.algorithm)
        if actual != digest.hex:
            await self.store.delete(final_key)
            await self.db.write_raw(uploads.forget, upload.id)
            raise UploadUnknown(upload.id)
        size = await self.store.stat(final_key)
        assert size is not None
        blob = await self._record(upload, str(digest), size)
        log.info("upload_recovered", upload_id=upload.id, digest=str(digest))
        return blob

    async def _link_dropped(
        self, upload: UploadInfo, digest: Digest, recorded: _Recorded, chunks: AsyncIterable[bytes] | None
    ) -> BlobInfo:
        """A finish that crashed after dropping its bytes because the registry held the digest
        already, before recording so: the running digest of what was recorded, continued over this
        request's body, proves the client sent that content; then the stored blob is linked."""
        hasher = ResumableHash.restore(recorded.hash) if recorded.hash else None
        if (
            hasher is None
            or digest.algorithm != hasher.algorithm
            or not await blobs.stored(self.db, upload.registry_id, str(digest))
        ):
            raise await _OpenWriter(self, upload, False).lost("its bytes are gone")
        counter = _Counter()
        if chunks is not None:
            async with closing(_hashed(chunks, hasher, counter, None)) as blocks:
                async for _block in blocks:
                    pass
        if hasher.hexdigest() != digest.hex:
            raise DigestMismatch(str(digest), f"{digest.algorithm}:{hasher.hexdigest()}")
        linked = await self._link_stored(upload, str(digest))
        if linked is None:  # collected since: the bytes are gone here and there
            raise await _OpenWriter(self, upload, False).lost("its bytes are gone")
        blob, queued = linked
        await self.store.discard(upload.final_key, recorded.storage)
        await self.db.write_raw(gc_objects.forget_deletions, [queued])
        log.info("upload_recovered", upload_id=upload.id, digest=str(digest))
        return blob

    async def _receive(
        self,
        upload: UploadInfo,
        writer: BlobWriter,
        hasher: ResumableHash,
        recorded: _Recorded,
        chunks: AsyncIterable[bytes],
        content_range: tuple[int, int] | None,
        content_length: int | None,
    ) -> None:
        """Write one request's body, counted and hashed; checks its range against the upload."""
        current = recorded.size
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
        counter = _Counter()
        async with closing(_hashed(chunks, hasher, counter, expected)) as blocks:
            async for block in blocks:
                await writer.write(block)
        if expected is not None and counter.count != expected:
            raise InvalidUpload(f"received {counter.count} bytes but {expected} were announced")

    def _writer(self, upload: UploadInfo, at_finish: bool = False) -> _OpenWriter:
        return _OpenWriter(self, upload, at_finish)

    async def _commit(self, upload: UploadInfo, writer: BlobWriter, digest: Digest) -> BlobInfo:
        """Publish (or, when the registry holds the digest already, drop) the bytes and record the
        blob. Content of another algorithm than the running digest's is published, then verified by
        reading it: it is linked to nothing before it matches.

        The session's row names the writer's (then the published) object until the blob's row does:
        both change in one transaction, which records nothing if the session expired meanwhile. So the
        collector's sweep never sees a published object that a row is about to name, and a blob the
        collector deleted between the check and the link is stored again from this upload's bytes.
        """
        final_key = upload.final_key
        verified = digest.algorithm == "sha256"  # the caller compared the running digest
        if verified and await blobs.stored(self.db, upload.registry_id, str(digest)):
            try:
                linked = await self._link_stored(upload, str(digest))
            except UploadUnknown:
                await writer.cancel()
                raise
            if linked is not None:
                blob, queued = linked
                await writer.cancel()
                await self.db.write_raw(gc_objects.forget_deletions, [queued])
                return blob
        size = await writer.commit()
        if not verified:
            actual = await self._digest_of(final_key, digest.algorithm)
            if actual != digest.hex:
                await self.store.delete(final_key)
                await self.db.write_raw(uploads.forget, upload.id)
                raise DigestMismatch(str(digest), f"{digest.algorithm}:{actual}")
        return await self._record(upload, str(digest), size)

    async def _record(self, upload: UploadInfo, digest: str, size: int) -> BlobInfo:
        """Record the published object as the blob and end the session, in one transaction; an
        upload whose session is gone (expired meanwhile) records nothing and its object goes."""
        final_key = upload.final_key

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

    async def _link_stored(self, upload: UploadInfo, digest: str) -> tuple[BlobInfo, int] | None:
        """Link the registry's blob of ``digest`` into the repository and end the session; None when
        garbage collection removed the blob since it was seen (then this upload's bytes are kept).
        The upload's own bytes, no longer named by a session, are queued for deletion in the same
        transaction: the caller deletes them, then forgets the returned outbox row."""

        def work(tx: RawTx) -> tuple[BlobInfo, int] | None:
            found = blobs.find_stored(tx, upload.registry_id, digest)
            if found is None:
                return None
            queued = uploads.forget_keeping_data_queued(tx, upload.id)
            if queued is None:
                raise UploadUnknown(upload.id)
            blobs.link(tx, repositories.ensure_id(tx, upload.registry_id, upload.repository), found.id)
            return found, queued

        return await self.db.write_raw(work)

    async def _digest_of(self, key: str, algorithm: str) -> str:
        hasher = new_hasher(algorithm)
        async with closing(self.store.reader(key)) as blocks:
            async for block in blocks:
                await _update(hasher, block)
        return hasher.hexdigest()

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
            await self._discard(upload.final_key, await uploads.storage_state(self.db, upload.id))
            await self.db.write_raw(uploads.forget, upload.id)

    async def _discard(self, final_key: str, storage_state: str | None) -> None:
        await self.store.discard(final_key, json.loads(storage_state) if storage_state else None)

    async def expire(self) -> int:
        """Drop sessions idle for longer than the expiry, with what their writers left."""
        expired = await uploads.idle_since(self.db, utcnow() - self.expiry)
        for upload_id, registry_id, key, storage_state in expired:
            async with self._lock(upload_id):
                await self._discard(UploadInfo(upload_id, registry_id, "", key).final_key, storage_state)
                await self.db.write_raw(uploads.forget, upload_id)
        if expired:
            log.info("uploads_expired", count=len(expired))
        return len(expired)


class _OpenWriter:
    """``async with``: the upload's writer, continued from its row, with its running digest.

    A row without a writer state is a new upload, or one an earlier release had begun: that one's
    bytes cannot be continued (no digest state was kept), so it is dropped and reported unknown.
    The writer is closed on leaving (after its state was recorded); a lost writer ends the upload.
    """

    def __init__(self, service: UploadService, upload: UploadInfo, at_finish: bool) -> None:
        self.service = service
        self.upload = upload
        self.at_finish = at_finish  # a lost writer raises _Published or _Dropped for finish to recover
        self.writer: BlobWriter | None = None

    async def __aenter__(self) -> tuple[BlobWriter, ResumableHash, _Recorded]:
        service, upload = self.service, self.upload
        recorded = await service._recorded(upload)
        if recorded.storage is None and recorded.size:
            raise await self.lost("it was begun by an earlier release")
        try:
            writer = await service.store.writer(upload.final_key, recorded.storage)
        except WriterLost as exc:
            if self.at_finish:
                if await service.store.stat(upload.final_key) is not None:
                    raise _Published from None
                raise _Dropped(recorded) from None
            raise await self.lost(str(exc)) from None
        except WriterBusy:
            raise _raced(upload, recorded.size) from None
        try:
            # Another process may have recorded a chunk while this one waited for the writer.
            now = await service.size(upload)
            if now != recorded.size:
                raise _raced(upload, now)
            hasher = ResumableHash.restore(recorded.hash) if recorded.hash else ResumableHash()
        except BaseException:
            await writer.close()  # __aexit__ does not run when __aenter__ fails
            raise
        self.writer = writer
        return writer, hasher, recorded

    async def lost(self, reason: str) -> UploadUnknown:
        """Drop an upload that cannot continue; the error to answer with. An object at its key is
        one a crashed finish published: while the upload's row exists no blob row names it."""
        log.warning("upload_lost", upload_id=self.upload.id, reason=reason)
        await self.service.store.discard(self.upload.final_key, None)
        await self.service.store.delete(self.upload.final_key)
        await self.service.db.write_raw(uploads.forget, self.upload.id)
        return UploadUnknown(self.upload.id)

    async def __aexit__(self, *exc: object) -> None:
        if self.writer is not None:
            await self.writer.close()


class _Published(Exception):
    """The upload's writer is gone because a finish published its object, then crashed."""


class _Dropped(Exception):
    """The upload's writer is gone and nothing was published (a finish that found the digest stored
    dropped the bytes, then crashed; or the bytes were lost)."""

    def __init__(self, recorded: _Recorded) -> None:
        self.recorded = recorded


def _raced(upload: UploadInfo, offset: int) -> RangeMismatch:
    return RangeMismatch(upload.id, offset, f"another request is writing this upload; it is at {offset}")


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
    chunks: AsyncIterable[bytes], hasher: Hasher, counter: _Counter, limit: int | None
) -> AsyncIterator[bytes]:
    """Blocks of the body, counted and hashed on a thread of their own, so receiving, hashing and
    storing overlap; the hash is complete once the blocks are."""
    hashing = SerialOffload("cargobay-hash")
    try:
        async for block in rechunk(chunks):
            counter.count += len(block)
            if limit is not None and counter.count > limit:
                raise InvalidUpload(f"body is longer than the announced {limit} bytes")
            await hashing.submit(hasher.update, block)
            yield block
        await hashing.drain()
    finally:
        await hashing.close()
