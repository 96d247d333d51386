"""The encryption wrapper's writer: whole sealed segments go into the driver's writer, so every part
the driver stores ends on a segment boundary; the partial last segment of a suspended upload waits
beside it, sealed, never as plaintext.

Its state (JSON, kept in the upload's row) is ``{"sealed": 1, "inner": <the driver writer's state>,
"size": <plaintext bytes>, "tail": <key of the sealed partial segment, or null>, "garbage": [...]}``.
The tail is a small object of its own, ``{namespace}/uploads/{object id}.{size}-{random}.tail``,
sealed as segment ``size // segment_size`` of the object (its data key, namespace, object id and
index are bound to it), written with ``put`` at every suspend under a new name: the tail of the state
the caller recorded is never overwritten, so a chunk that fails after its tail was written leaves
the recorded state intact. Tails a recorded state superseded are its ``garbage``, deleted when that
state is continued, committed or cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections import deque
from collections.abc import Callable
from typing import Protocol, TypeVar

from cargobay.storage.base import (
    BlobStore,
    BlobWriter,
    Chunk,
    ObjectNotFound,
    WriterLost,
    WriterState,
    upload_key,
)
from cargobay.storage.segments import HEADER_SIZE, OVERHEAD, ObjectCipher, open_segment
from cargobay.storage.streams import BufferPool, ignore_result

SUFFIX = ".cbe"
TAIL_SUFFIX = ".tail"
LOOKAHEAD = 2  # segments being sealed or opened ahead of the consumer, per stream
INLINE = 64 * 1024  # smaller segments are handled on the event loop: cheaper than a thread hop

T = TypeVar("T")


class SealingHost(Protocol):
    """What the writer needs of ``EncryptedStore``."""

    inner: BlobStore
    segment_size: int
    header: bytes
    allow_plaintext: bool

    async def cipher(self, key: str) -> ObjectCipher: ...

    def submit(self, job: Callable[[], T]) -> asyncio.Future[T]: ...

    async def read_exactly(self, sealed_key: str, offset: int, length: int) -> bytes: ...


class SealingWriter:
    def __init__(
        self,
        store: SealingHost,
        key: str,
        cipher: ObjectCipher,
        inner: BlobWriter,
        size: int,
        tail_plain: bytes,
        tail_key: str | None,
    ) -> None:
        self._store = store
        self._key = key
        self._cipher = cipher
        self._inner = inner
        self._size = size
        self._segment = store.segment_size
        self._index = size // self._segment  # the index the next sealed segment gets
        self._pieces: list[Chunk] = [tail_plain] if tail_plain else []
        self._held = len(tail_plain)
        self._tail_key = tail_key
        self._pending: deque[asyncio.Future[Chunk]] = deque()
        self._outputs = BufferPool(self._segment + OVERHEAD)
        self._closed = False

    @classmethod
    async def open(cls, store: SealingHost, key: str, state: WriterState | None) -> SealingWriter:
        cipher = await store.cipher(key)
        if state is None:
            inner = await store.inner.writer(key + SUFFIX)
            try:
                await inner.write(store.header)
            except BaseException:
                await inner.close()
                raise
            return cls(store, key, cipher, inner, 0, b"", None)
        if state.get("sealed") != 1:  # e.g. an upload begun while encryption was off
            raise WriterLost(f"{key}: the upload was not begun with encryption on")
        inner = await store.inner.writer(key + SUFFIX, state["inner"])
        try:
            size, tail_key = int(state["size"]), state.get("tail")
            segment = store.segment_size
            if inner.size != HEADER_SIZE + (size // segment) * (segment + OVERHEAD):
                raise WriterLost(f"{key}: the stored segments do not match the upload's size")
            tail_plain = b""
            if size % segment:
                tail_plain = await _open_tail(store, cipher, key, tail_key, size)
        except BaseException:
            await inner.close()
            raise
        garbage = list(state.get("garbage") or [])
        if garbage:  # the state being continued was recorded: what it superseded can go
            with contextlib.suppress(Exception):  # a tail left over is garbage, never data
                await store.inner.delete_many(garbage)
        return cls(store, key, cipher, inner, size, tail_plain, tail_key)

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: Chunk) -> None:
        view = memoryview(data)
        self._size += len(view)
        while view:
            take = min(len(view), self._segment - self._held)
            if take == len(data) == self._segment:
                piece: Chunk = data  # the chunk is a segment by itself
            else:
                piece = view[:take]
            view = view[take:]
            self._pieces.append(piece)
            self._held += take
            if self._held == self._segment:
                block = self._pieces[0] if len(self._pieces) == 1 else b"".join(self._pieces)
                self._pieces, self._held = [], 0
                await self._seal(block)

    async def _seal(self, block: Chunk) -> None:
        index, self._index = self._index, self._index + 1
        out = self._outputs.take(len(block) + OVERHEAD)
        cipher = self._cipher

        def job() -> Chunk:
            return cipher.seal(index, False, block, out)

        if len(block) <= INLINE and not self._pending:
            await self._inner.write(job())
            return
        self._pending.append(self._store.submit(job))
        while len(self._pending) > LOOKAHEAD:
            await self._inner.write(await self._pending.popleft())

    async def _drain(self) -> None:
        while self._pending:
            await self._inner.write(await self._pending.popleft())

    def _partial(self) -> bytes:
        return b"".join(self._pieces)

    async def suspend(self) -> WriterState:
        await self._drain()
        partial = self._partial()
        old_tail, new_tail = self._tail_key, None
        if partial:
            index, cipher = self._index, self._cipher
            sealed = await self._store.submit(lambda: cipher.seal(index, False, partial))
            new_tail = f"{upload_key(self._key)}.{self._size}-{secrets.token_hex(6)}{TAIL_SUFFIX}"
            await self._store.inner.put(new_tail, bytes(sealed))
        inner_state = await self._inner.suspend()
        self._tail_key = new_tail
        self._pieces = [partial] if partial else []
        garbage = [old_tail] if old_tail is not None and old_tail != new_tail else []
        return {"sealed": 1, "inner": inner_state, "size": self._size, "tail": new_tail, "garbage": garbage}

    async def commit(self) -> int:
        await self._drain()
        partial = self._partial()
        if partial:
            await self._inner.write(await self._store.submit(self._sealer(self._index, partial)))
            self._index += 1
        await self._inner.write(self._cipher.seal(self._index, True, b""))
        self._closed = True
        await self._inner.commit()
        await self._forget_tail()
        if self._store.allow_plaintext:  # a plaintext object from before encryption was on
            await self._store.inner.delete(self._key)
        return self._size

    def _sealer(self, index: int, plain: bytes) -> Callable[[], Chunk]:
        cipher = self._cipher
        return lambda: cipher.seal(index, False, plain)

    async def cancel(self) -> None:
        self._stop_sealing()
        self._closed = True
        await self._inner.cancel()
        await self._forget_tail()

    async def close(self) -> None:
        self._stop_sealing()
        if not self._closed:
            self._closed = True
            await self._inner.close()

    async def _forget_tail(self) -> None:
        if self._tail_key is not None:
            with contextlib.suppress(Exception):  # a leftover tail is garbage, never data
                await self._store.inner.delete(self._tail_key)

    def _stop_sealing(self) -> None:
        for future in self._pending:
            future.cancel()
            future.add_done_callback(ignore_result)
        self._pending.clear()


async def _open_tail(
    store: SealingHost, cipher: ObjectCipher, key: str, tail_key: object, size: int
) -> bytes:
    """The plaintext of a suspended upload's partial last segment (only ever held in memory)."""
    if not isinstance(tail_key, str):
        raise WriterLost(f"{key}: the upload's partial segment is not recorded")
    keep = size % store.segment_size
    try:
        sealed = await store.read_exactly(tail_key, 0, keep + OVERHEAD)
    except ObjectNotFound:
        raise WriterLost(f"{key}: the upload's partial segment is gone") from None
    index = size // store.segment_size
    plain = await store.submit(lambda: open_segment(cipher, key, index, False, bytearray(sealed)))
    return bytes(plain)


async def discard_sealing(store: SealingHost, key: str, state: WriterState | None) -> None:
    """Drop what a (possibly dead) sealing writer for ``key`` left: the driver's data, its tails,
    and a staged plaintext upload from before encryption was on."""
    sealed = state is not None and state.get("sealed") == 1
    await store.inner.discard(key + SUFFIX, state["inner"] if state is not None and sealed else None)
    if state is not None and sealed:
        leftovers = [k for k in [state.get("tail"), *(state.get("garbage") or [])] if isinstance(k, str)]
        if leftovers:
            await store.inner.delete_many(leftovers)
    await store.inner.discard(key, None if sealed else state)
