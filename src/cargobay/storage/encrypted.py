"""Encryption at rest as a ``BlobStore`` wrapper: any driver below, plaintext semantics above.

Object ``k`` is stored sealed (format in ``storage.segments``) under ``k + ".cbe"``, with the data key
of its namespace. The suffix keeps sealed objects apart from plaintext ones written before encryption
was switched on: those stay readable only while ``allow_plaintext`` says such data may exist, so that
replacing a sealed object by a plaintext file is an error rather than a way to serve forged bytes.

Segments are sealed in a small thread pool, a few segments ahead of the consumer, so memory stays
constant. Reads are opened on the event loop while the ciphertext is in the page cache (``RWF_NOWAIT``
reads, one such read per store, i.e. per process, at a time) and in a reader thread otherwise.
Handing every segment from a thread to the loop took five context switches per segment, on cores
the client needs too. On the loop, each segment's AES-GCM keeps it busy for about 0.3 ms per MiB,
other tasks get a turn after every segment, and the loop never waits for the disk.
Every segment is authenticated before any of its bytes are yielded; a read that reaches the end of
an object holds back its last segment until the final segment has proven the object complete.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import RawIOBase
from typing import TypeVar

from cargobay.storage.base import Chunk, IntegrityError, ObjectNotFound, RawBlobStore, split_key
from cargobay.storage.keys import DataKeySource
from cargobay.storage.segments import (
    HEADER_SIZE,
    OVERHEAD,
    SEGMENT_SIZE,
    Layout,
    ObjectCipher,
    header,
)
from cargobay.storage.streams import BufferPool, closing, iterate_in_thread, rechunk

SUFFIX = ".cbe"
_LOOKAHEAD = 2  # segments being sealed or opened ahead of the consumer, per stream
_INLINE = 64 * 1024  # smaller segments are handled on the event loop: cheaper than a thread hop

T = TypeVar("T")
Job = Callable[[], T]


class EncryptedStore:
    def __init__(
        self,
        inner: RawBlobStore,
        keys: DataKeySource,
        *,
        allow_plaintext: bool = False,
        segment_size: int = SEGMENT_SIZE,
        inline_reads: bool = True,
    ) -> None:
        if not OVERHEAD < segment_size < 2**31:
            raise ValueError("segment size out of range")
        self.inner = inner
        self.keys = keys
        self.allow_plaintext = allow_plaintext
        self.segment_size = segment_size
        self._header = header(segment_size)
        # Whether a read may open its segments on the event loop (see the module docstring); off,
        # or when the platform has no RWF_NOWAIT, every read goes through a reader thread.
        self._inline_reads = inline_reads and hasattr(os, "RWF_NOWAIT")
        self._inline_busy = False
        self._pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="crypto")

    # -- committed objects ------------------------------------------------------------------
    async def stat(self, key: str) -> int | None:
        cipher_size = await self.inner.stat(key + SUFFIX)
        if cipher_size is not None:
            return self._layout(key, cipher_size, finished=True).size
        size = await self.inner.stat(key)
        if size is not None:
            self._check_plaintext_allowed(key)
        return size

    def reader(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[Chunk]:
        return self._read(key, offset, length, finished=True)

    async def put(self, key: str, data: bytes) -> None:
        cipher = await self._cipher(key)
        await self.inner.put(key + SUFFIX, await self._run(lambda: cipher.seal_object(data)))
        if self.allow_plaintext:
            await self.inner.delete(key)

    async def delete(self, key: str) -> None:
        await self.inner.delete(key + SUFFIX)
        await self.inner.delete(key)

    def list(self, prefix: str) -> AsyncIterator[str]:
        return _unsuffixed(self.inner.list(prefix))

    # -- staged objects ---------------------------------------------------------------------
    async def append(self, key: str, chunks: AsyncIterable[Chunk]) -> int:
        await self._adopt_staged_plaintext(key)
        return await self._append(key, chunks)

    async def staged_size(self, key: str) -> int | None:
        layout = await self._settled(key, repair=False)
        if layout is not None:
            return layout.size
        return await self.inner.staged_size(key) if self.allow_plaintext else None

    def staged_reader(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[Chunk]:
        return self._read(key, offset, length, finished=False)

    async def truncate(self, key: str, size: int) -> None:
        await self._adopt_staged_plaintext(key)
        sealed_key = key + SUFFIX
        layout = await self._staged_layout(key)
        if not 0 <= size <= layout.size:
            raise ValueError(f"cannot truncate {key} of {layout.size} bytes to {size}")
        if size == layout.size:
            return
        index, keep = divmod(size, self.segment_size)
        cut = layout.offset(index)
        resealed: Chunk = b""
        if keep:  # the new last segment is a part of an old one
            cipher = await self._cipher(key)
            sealed = await self._read_sealed(sealed_key, cut, layout.sealed_length(index))
            plain = await self._run(self._opener(key, cipher, index, sealed))
            resealed = await self._run(lambda: cipher.seal(index, False, plain[:keep]))
        await self.inner.truncate(sealed_key, cut)
        if resealed:
            await self.inner.append(sealed_key, _one(resealed))

    async def commit(self, staged_key: str, key: str) -> None:
        if split_key(staged_key) != split_key(key):
            raise ValueError(f"commit of {staged_key} to {key} would change its namespace or object id")
        await self._adopt_staged_plaintext(staged_key)
        sealed_key = staged_key + SUFFIX
        layout = await self._staged_layout(staged_key)
        cipher = await self._cipher(staged_key)
        await self.inner.append(sealed_key, _one(cipher.seal(layout.segments, True, b"")))
        try:
            await self.inner.commit(sealed_key, key + SUFFIX)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.inner.truncate(sealed_key, layout.cipher_size)
            raise
        if self.allow_plaintext:
            await self.inner.delete(key)

    async def discard(self, key: str) -> None:
        await self.inner.discard(key + SUFFIX)
        await self.inner.discard(key)

    def list_staged(self, prefix: str) -> AsyncIterator[str]:
        return _unsuffixed(self.inner.list_staged(prefix))

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        await self.inner.close()

    # -- data stored before encryption was on -------------------------------------------------
    async def plaintext_keys(self, prefix: str = "", staged: bool = False) -> AsyncIterator[str]:
        """Keys of objects stored unencrypted (written while encryption was off)."""
        keys = self.inner.list_staged(prefix) if staged else self.inner.list(prefix)
        async for key in keys:
            if not key.endswith(SUFFIX):
                yield key

    async def seal_plaintext(self, key: str) -> bool:
        """Encrypt a committed plaintext object in place (atomically); False when there is none."""
        if await self.inner.stat(key) is None:
            return False
        if await self.inner.stat(key + SUFFIX) is None:  # else an earlier run sealed it already
            namespace, object_id = split_key(key)
            staging = f"{namespace}/sealing/{object_id}"
            await self.inner.discard(staging + SUFFIX)
            await self._append(staging, self.inner.reader(key))
            await self.commit(staging, key)
        await self.inner.delete(key)
        return True

    async def seal_staged_plaintext(self, key: str) -> bool:
        """Encrypt a staged plaintext object; False when there is none.

        Until its plaintext is discarded the plaintext is the truth, so a conversion cut short by a
        crash is simply done again.
        """
        if await self.inner.staged_size(key) is None:
            return False
        await self.inner.discard(key + SUFFIX)
        await self._append(key, self.inner.staged_reader(key))
        await self.inner.discard(key)
        return True

    async def _adopt_staged_plaintext(self, key: str) -> None:
        """A staged object from before encryption was on is encrypted by its next write."""
        if self.allow_plaintext:
            await self.seal_staged_plaintext(key)

    def _check_plaintext_allowed(self, key: str) -> None:
        if not self.allow_plaintext:
            raise IntegrityError(f"{key} is stored unencrypted where only sealed data may be", key=key)

    # -- reading ----------------------------------------------------------------------------
    async def _read(self, key: str, offset: int, length: int | None, finished: bool) -> AsyncIterator[Chunk]:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("negative offset or length")
        sealed_key = key + SUFFIX
        cipher_size = await (self.inner.stat if finished else self.inner.staged_size)(sealed_key)
        if cipher_size is None:
            async for chunk in self._read_plaintext(key, offset, length, finished):
                yield chunk
            return
        if finished:
            layout = self._layout(key, cipher_size, finished)
        else:  # an upload may end in a torn segment after a crash: read what is whole
            layout = await self._settled(key, repair=False) or Layout(self.segment_size, 0, 0, False)
        end = layout.size if length is None else min(layout.size, offset + length)
        plan = layout.plan(offset, end)
        if not plan:
            return
        cipher = await self._cipher(key)
        read = _Read(key, sealed_key, not finished, cipher, layout, plan, offset, end)
        opening = _Opening(read, self._header)
        if self._inline_reads and not self._inline_busy:
            stream = self._opened_inline(opening)
        else:
            stream = self._opened_in_thread(opening)
        async with closing(stream):
            async for piece in stream:
                yield piece

    def _opened_in_thread(self, opening: _Opening) -> AsyncIterator[Chunk]:
        return iterate_in_thread(lambda: self._decrypted(opening), depth=_LOOKAHEAD + 2)

    async def _opened_inline(self, opening: _Opening) -> AsyncIterator[Chunk]:
        """Open segments on the event loop while their ciphertext is in the page cache.

        One such read at a time per store (so per process): it bounds how long the loop is kept
        busy, and concurrent reads still spread their AES over cores in reader threads. The first
        segment that is not (or only partly) cached hands the rest of the read to a reader thread,
        which reads ahead from the disk: the loop never waits for a disk.
        """
        read, layout = opening.read, opening.read.layout
        self._inline_busy = True
        try:
            raw = await asyncio.to_thread(self.inner.open_raw, read.sealed_key, 0, staged=read.staged)
            with raw:
                fd = _fileno(raw)
                head = bytearray(HEADER_SIZE)
                if _read_cached(fd, head, 0):
                    opening.check_header(head)
                    for index in opening.remaining():
                        sealed = opening.buffers.take(layout.sealed_length(index))
                        if not _read_cached(fd, sealed, layout.offset(index)):
                            break
                        piece = opening.open(index, sealed)
                        if piece is not None:
                            yield piece
                        # A consumer whose socket takes every write never suspends, and the loop
                        # would serve nothing else until the read ends: give other requests a turn.
                        await asyncio.sleep(0)
        finally:
            self._inline_busy = False
        if opening.remaining():  # not all of it was cached: a reader thread does the rest
            async with closing(self._opened_in_thread(opening)) as rest:
                async for piece in rest:
                    yield piece
        elif opening.held is not None:
            yield opening.held

    def _decrypted(self, opening: _Opening) -> Iterator[Chunk]:
        """Read and open the planned segments in this (worker) thread, exact sizes at a time."""
        read, plan = opening.read, opening.remaining()
        first = plan[0]
        header_next = not opening.header_checked and not first  # it lies right before segment 0
        if not opening.header_checked and first:  # the range starts further in: read it where it lies
            with self.inner.open_raw(read.sealed_key, 0, staged=read.staged) as raw:
                opening.check_header(_read_into(raw, memoryview(bytearray(HEADER_SIZE)), read.key))
        start = 0 if header_next else read.layout.offset(first)
        with self.inner.open_raw(read.sealed_key, start, staged=read.staged) as raw:
            if header_next:
                opening.check_header(_read_into(raw, memoryview(bytearray(HEADER_SIZE)), read.key))
            for index in plan:
                sealed = _read_into(raw, opening.buffers.take(read.layout.sealed_length(index)), read.key)
                piece = opening.open(index, sealed)
                if piece is not None:
                    yield piece
        if opening.held is not None:
            yield opening.held

    async def _read_plaintext(
        self, key: str, offset: int, length: int | None, finished: bool
    ) -> AsyncIterator[Chunk]:
        size = await (self.inner.stat if finished else self.inner.staged_size)(key)
        if size is None:
            raise ObjectNotFound(key)
        self._check_plaintext_allowed(key)
        source = self.inner.reader if finished else self.inner.staged_reader
        async with closing(source(key, offset, length)) as stream:
            async for chunk in stream:
                yield chunk

    async def _read_sealed(self, sealed_key: str, offset: int, length: int, finished: bool = False) -> bytes:
        source = self.inner.reader if finished else self.inner.staged_reader
        async with closing(source(sealed_key, offset, length)) as stream:
            data = b"".join([chunk async for chunk in stream])
        if len(data) != length:
            raise IntegrityError(f"{sealed_key} is shorter than its size says", key=sealed_key)
        return data

    # -- writing ----------------------------------------------------------------------------
    async def _append(self, key: str, chunks: AsyncIterable[Chunk]) -> int:
        sealed_key = key + SUFFIX
        cipher = await self._cipher(key)
        settled = await self._settle(key, repair=True)
        cipher_size = None if settled is None else settled.layout.cipher_size
        layout = settled.layout if settled else Layout(self.segment_size, 0, 0, finished=False)
        index = layout.segments
        tail_plain = b""
        tail_sealed = b""
        if layout.size % self.segment_size:  # a partial last segment: extend it, then seal it anew
            index -= 1
            # Settling authenticated it (a torn one is cut, leaving whole segments only).
            assert settled is not None and settled.last is not None
            tail_sealed, tail_plain = settled.last
        async with closing(self._sealed(cipher, index, tail_plain, chunks)) as sealed:
            first = await anext(sealed, None)
            if first is None:  # nothing arrived: leave the object as it was
                if cipher_size is None:
                    await self.inner.append(sealed_key, _one(self._header))
                return layout.size
            lead = [first] if cipher_size is not None else [self._header, first]
            cut = layout.offset(index)
            if tail_sealed:
                await self.inner.truncate(sealed_key, cut)
            try:
                cipher_size = await self.inner.append(sealed_key, _chain(lead, sealed))
            except BaseException:
                if tail_sealed and await self.inner.staged_size(sealed_key) == cut:
                    await self.inner.append(sealed_key, _one(tail_sealed))  # put the old tail back
                raise
        return self._layout(key, cipher_size, finished=False).size

    async def _sealed(
        self, cipher: ObjectCipher, index: int, head: bytes, chunks: AsyncIterable[Chunk]
    ) -> AsyncIterator[Chunk]:
        """Sealed non-final segments from ``index`` on, of ``head`` plus the incoming plaintext;
        nothing at all when no plaintext arrives (``head`` is then left as it is stored)."""
        incoming = _nonempty(chunks)
        first = await anext(incoming, None)
        if first is None:
            return
        blocks = rechunk(_chain([head, first] if head else [first], incoming), self.segment_size)
        outputs = BufferPool(self.segment_size + OVERHEAD)

        def seal_next(block: Chunk) -> Job[Chunk]:
            nonlocal index
            at, index = index, index + 1
            out = outputs.take(len(block) + OVERHEAD)
            return lambda: cipher.seal(at, False, block, out)

        async with closing(self._ahead(blocks, seal_next)) as sealed:
            async for segment in sealed:
                yield segment

    # -- helpers ----------------------------------------------------------------------------
    async def _ahead(
        self,
        blocks: AsyncIterable[Chunk],
        work: Callable[[Chunk], Job[T]],
    ) -> AsyncIterator[T]:
        """Run ``work`` for each block in the pool, a few blocks ahead; yield the results in order."""
        loop = asyncio.get_running_loop()
        pending: deque[asyncio.Future[T]] = deque()
        try:
            async for block in blocks:
                job = work(block)
                if len(block) <= _INLINE and not pending:
                    yield job()
                    continue
                pending.append(loop.run_in_executor(self._pool, job))
                if len(pending) > _LOOKAHEAD:
                    yield await pending.popleft()
            while pending:
                yield await pending.popleft()
        finally:
            for future in pending:
                future.cancel()
                future.add_done_callback(_ignore_result)

    def _opener(self, key: str, cipher: ObjectCipher, index: int, sealed: bytes) -> Job[bytes]:
        """The plaintext of the lone non-final segment ``index`` (for appends and truncates)."""

        def job() -> bytes:
            return bytes(_open_segment(cipher, key, index, False, bytearray(sealed)))

        return job

    async def _cipher(self, key: str) -> ObjectCipher:
        namespace, object_id = split_key(key)
        return ObjectCipher(await self.keys.data_key(namespace), self.segment_size, namespace, object_id)

    async def _run(self, job: Job[T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, job)

    async def _staged_layout(self, key: str) -> Layout:
        layout = await self._settled(key, repair=True)
        if layout is None:
            raise ObjectNotFound(key)
        return layout

    async def _settled(self, key: str, *, repair: bool) -> Layout | None:
        settled = await self._settle(key, repair=repair)
        return None if settled is None else settled.layout

    async def _settle(self, key: str, *, repair: bool) -> _Settled | None:
        """A staged object as far as it is whole: its longest prefix of authentic segments.

        A crash in the middle of an append leaves the last segment torn (never acknowledged to the
        client, who resumes from the size reported now). With ``repair`` (callers hold the upload's
        lock) the torn bytes are cut off the stored object before it changes again.
        """
        sealed_key = key + SUFFIX
        cipher_size = await self.inner.staged_size(sealed_key)
        if cipher_size is None:
            return None
        if cipher_size < HEADER_SIZE:  # torn before its header was whole: nothing was acknowledged
            if not repair:
                return _Settled(Layout(self.segment_size, 0, 0, finished=False), None)
            await self.inner.discard(sealed_key)
            return None
        layout = Layout.staged_prefix(self.segment_size, cipher_size)
        last = None
        if layout.segments:
            last = await self._open_staged_segment(key, layout, layout.segments - 1)
            if last is None:
                layout = layout.without_last()
        if repair and cipher_size != layout.cipher_size:
            await self.inner.truncate(sealed_key, layout.cipher_size)
        return _Settled(layout, last)

    async def _open_staged_segment(self, key: str, layout: Layout, index: int) -> tuple[bytes, bytes] | None:
        """The sealed bytes and plaintext of a non-final staged segment; None if not authentic."""
        cipher = await self._cipher(key)
        sealed = await self._read_sealed(key + SUFFIX, layout.offset(index), layout.sealed_length(index))
        try:
            plain = await self._run(self._opener(key, cipher, index, sealed))
        except IntegrityError:
            return None
        return sealed, plain

    def _layout(self, key: str, cipher_size: int, finished: bool) -> Layout:
        try:
            return Layout.parse(self.segment_size, cipher_size, finished)
        except IntegrityError as exc:
            raise IntegrityError(f"{key}: {exc}", key=key) from None


@dataclass(frozen=True, slots=True)
class _Settled:
    """A staged object's whole prefix, with its last segment as read while checking it (sealed
    bytes, plaintext), or None when it has no segment or the last one was torn and cut off."""

    layout: Layout
    last: tuple[bytes, bytes] | None


@dataclass(frozen=True, slots=True)
class _Read:
    """One planned read of a sealed object: what ``_decrypted`` needs in its thread."""

    key: str
    sealed_key: str
    staged: bool
    cipher: ObjectCipher
    layout: Layout
    plan: list[int]
    start: int
    end: int


class _Opening:
    """Where one planned read stands: the segments still to open and the piece held back.

    Segments are authenticated one by one; a read that reaches the last data segment holds its
    bytes back until the final segment has proven the object whole. The state carries over when
    a read that began on the event loop moves to a reader thread.
    """

    def __init__(self, read: _Read, header: bytes) -> None:
        self.read = read
        self.header = header
        self.opened = 0  # how many segments of the plan were opened
        self.header_checked = False
        self.held: Chunk | None = None
        self.buffers = BufferPool(read.layout.segment_size + OVERHEAD)

    def check_header(self, data: bytes | bytearray | memoryview) -> None:
        if data != self.header:
            key = self.read.key
            raise IntegrityError(f"{key} does not start with the expected header", key=key)
        self.header_checked = True

    def remaining(self) -> list[int]:
        return self.read.plan[self.opened :]

    def open(self, index: int, sealed: memoryview) -> Chunk | None:
        """The plaintext of segment ``index``, the next of the plan, to hand on now (None: nothing,
        or held back)."""
        read, layout = self.read, self.read.layout
        plain = _open_segment(read.cipher, read.key, index, index == layout.segments, sealed)
        self.opened += 1
        if index == layout.segments:
            return None
        base = index * layout.segment_size
        low, high = max(read.start - base, 0), min(read.end - base, len(plain))
        piece = plain if low == 0 and high == len(plain) else plain[low:high]
        if index == layout.segments - 1 and read.plan[-1] == layout.segments:
            self.held = piece
            return None
        return piece


def _open_segment(
    cipher: ObjectCipher, key: str, index: int, last: bool, sealed: bytearray | memoryview
) -> memoryview:
    """``ObjectCipher.open_in_place``, with a failure naming the object."""
    try:
        return cipher.open_in_place(index, last, sealed)
    except IntegrityError as exc:
        raise IntegrityError(f"{key}: {exc}", key=key) from None


def _read_cached(fd: int | None, buffer: bytearray | memoryview, offset: int) -> bool:
    """Fill ``buffer`` from ``offset`` if the page cache holds all of it, without blocking.

    False when any of it would have to come from the disk, or when there is no file to ask: the
    caller then reads it in a thread, where a short object is reported as such.
    """
    if fd is None:
        return False
    try:
        return os.preadv(fd, [buffer], offset, os.RWF_NOWAIT) == len(buffer)
    except OSError:  # EAGAIN: not cached; EOPNOTSUPP: no RWF_NOWAIT for this file
        return False


def _fileno(raw: RawIOBase) -> int | None:
    try:
        return raw.fileno()
    except OSError:  # io.UnsupportedOperation too: a driver's reader need not be a file
        return None


def _read_into(raw: RawIOBase, buffer: memoryview, key: str) -> memoryview:
    """Fill ``buffer`` from ``raw``; a short object is an integrity failure."""
    got = 0
    while got < len(buffer):
        more = raw.readinto(buffer[got:])
        if not more:
            raise IntegrityError(f"{key} is shorter than its size says", key=key)
        got += more
    return buffer


async def _unsuffixed(keys: AsyncIterator[str]) -> AsyncIterator[str]:
    seen: set[str] = set()
    async for key in keys:
        key = key.removesuffix(SUFFIX)
        if key not in seen:
            seen.add(key)
            yield key


async def _one(*parts: Chunk) -> AsyncIterator[Chunk]:
    for part in parts:
        yield part


async def _chain(lead: Iterable[Chunk], rest: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    for block in lead:
        yield block
    async for block in rest:
        yield block


async def _nonempty(chunks: AsyncIterable[Chunk]) -> AsyncIterator[Chunk]:
    async for chunk in chunks:
        if chunk:
            yield chunk


def _ignore_result(future: asyncio.Future[T]) -> None:
    if not future.cancelled():
        future.exception()
