"""Encryption at rest as a ``BlobStore`` wrapper: any driver below, plaintext semantics above.

Object ``k`` is stored sealed (format in ``storage.segments``) under ``k + ".cbe"``, with the data key
of its namespace. The suffix keeps sealed objects apart from plaintext ones written before encryption
was switched on: those stay readable only while ``allow_plaintext`` says such data may exist, so that
replacing a sealed object by a plaintext file is an error rather than a way to serve forged bytes.
Writers (``storage.sealed_writer``) seal whole segments into the driver's writer; the partial last
segment of a suspended upload is kept sealed beside it, never as plaintext.

Segments are sealed in a small thread pool, a few segments ahead of the consumer, so memory stays
constant. Over a driver with blocking raw reads (files), reads are opened on the event loop while
the ciphertext is in the page cache (``RWF_NOWAIT`` reads, one such read per store, i.e. per
process, at a time) and in a reader thread otherwise. Handing every segment from a thread to the
loop took five context switches per segment, on cores the client needs too. On the loop, each
segment's AES-GCM keeps it busy for about 0.3 ms per MiB, other tasks get a turn after every
segment, and the loop never waits for the disk. Over other drivers (object stores) one ranged read
streams the segments, which are opened in the pool a few segments ahead.
Every segment is authenticated before any of its bytes are yielded; a read that reaches the end of
an object holds back its last segment until the final segment has proven the object complete.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from io import RawIOBase
from typing import TypeVar

from cargobay.storage.base import (
    BlobStore,
    Chunk,
    IntegrityError,
    ObjectNotFound,
    RawReads,
    WriterState,
    split_key,
)
from cargobay.storage.keys import DataKeySource
from cargobay.storage.sealed_writer import (
    INLINE,
    LOOKAHEAD,
    SUFFIX,
    TAIL_SUFFIX,
    SealingWriter,
    discard_sealing,
)
from cargobay.storage.segments import (
    HEADER_SIZE,
    OVERHEAD,
    SEGMENT_SIZE,
    Layout,
    ObjectCipher,
    header,
    open_segment,
)
from cargobay.storage.streams import BufferPool, closing, ignore_result, iterate_in_thread

__all__ = ["SUFFIX", "EncryptedStore", "SealingWriter"]

T = TypeVar("T")
Job = Callable[[], T]


class EncryptedStore:
    def __init__(
        self,
        inner: BlobStore,
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
        self.header = header(segment_size)
        # Whether a read may open its segments on the event loop (see the module docstring); off,
        # or when the platform has no RWF_NOWAIT, every read goes through a reader thread.
        self._raw = inner if isinstance(inner, RawReads) else None
        self._inline_reads = inline_reads and hasattr(os, "RWF_NOWAIT") and inner_files(self._raw)
        self._inline_busy = False
        self._pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="crypto")

    # -- objects ----------------------------------------------------------------------------
    async def stat(self, key: str) -> int | None:
        cipher_size = await self.inner.stat(key + SUFFIX)
        if cipher_size is not None:
            return self._layout(key, cipher_size).size
        size = await self.inner.stat(key)
        if size is not None:
            self._check_plaintext_allowed(key)
        return size

    def reader(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[Chunk]:
        return self._read(key, offset, length)

    async def put(self, key: str, data: bytes) -> None:
        cipher = await self.cipher(key)
        await self.inner.put(key + SUFFIX, await self.run(lambda: cipher.seal_object(data)))
        if self.allow_plaintext:
            await self.inner.delete(key)

    async def writer(self, key: str, state: WriterState | None = None) -> SealingWriter:
        return await SealingWriter.open(self, key, state)

    async def discard(self, key: str, state: WriterState | None) -> None:
        await discard_sealing(self, key, state)

    async def delete(self, key: str) -> None:
        await self.inner.delete_many([key + SUFFIX, key])

    async def delete_many(self, keys: Sequence[str]) -> None:
        await self.inner.delete_many([k for key in keys for k in (key + SUFFIX, key)])

    def list(self, prefix: str) -> AsyncIterator[str]:
        return _unsuffixed(self.inner.list(prefix))

    async def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
        await self.inner.close()

    # -- data stored before encryption was on -------------------------------------------------
    async def plaintext_keys(self, prefix: str = "") -> AsyncIterator[str]:
        """Keys of objects stored unencrypted (written while encryption was off)."""
        async for key in self.inner.list(prefix):
            if not key.endswith(SUFFIX) and not key.endswith(TAIL_SUFFIX):
                yield key

    async def seal_plaintext(self, key: str) -> bool:
        """Encrypt a plaintext object in place (atomically); False when there is none."""
        if await self.inner.stat(key) is None:
            return False
        if await self.inner.stat(key + SUFFIX) is None:  # else an earlier run sealed it already
            writer = await self.writer(key)
            try:
                async with closing(self.inner.reader(key)) as chunks:
                    async for chunk in chunks:
                        await writer.write(chunk)
                await writer.commit()
            except BaseException:
                await writer.cancel()
                raise
        await self.inner.delete(key)
        return True

    def _check_plaintext_allowed(self, key: str) -> None:
        if not self.allow_plaintext:
            raise IntegrityError(f"{key} is stored unencrypted where only sealed data may be", key=key)

    # -- reading ----------------------------------------------------------------------------
    async def _read(self, key: str, offset: int, length: int | None) -> AsyncIterator[Chunk]:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("negative offset or length")
        sealed_key = key + SUFFIX
        cipher_size = await self.inner.stat(sealed_key)
        if cipher_size is None:
            async for chunk in self._read_plaintext(key, offset, length):
                yield chunk
            return
        layout = self._layout(key, cipher_size)
        end = layout.size if length is None else min(layout.size, offset + length)
        plan = layout.plan(offset, end)
        if not plan:
            return
        cipher = await self.cipher(key)
        opening = _Opening(_Read(key, sealed_key, cipher, layout, plan, offset, end), self.header)
        if self._raw is None:
            stream = self._opened_from_reader(opening)
        elif self._inline_reads and not self._inline_busy:
            stream = self._opened_inline(opening, self._raw)
        else:
            stream = self._opened_in_thread(opening, self._raw)
        async with closing(stream):
            async for piece in stream:
                yield piece

    def _opened_in_thread(self, opening: _Opening, raw: RawReads) -> AsyncIterator[Chunk]:
        return iterate_in_thread(lambda: self._decrypted(opening, raw), depth=LOOKAHEAD + 2)

    async def _opened_inline(self, opening: _Opening, raw_reads: RawReads) -> AsyncIterator[Chunk]:
        """Open segments on the event loop while their ciphertext is in the page cache.

        One such read at a time per store (so per process): it bounds how long the loop is kept
        busy, and concurrent reads still spread their AES over cores in reader threads. The first
        segment that is not (or only partly) cached hands the rest of the read to a reader thread,
        which reads ahead from the disk: the loop never waits for a disk.
        """
        read, layout = opening.read, opening.read.layout
        self._inline_busy = True
        try:
            raw = await asyncio.to_thread(raw_reads.open_raw, read.sealed_key, 0)
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
            async with closing(self._opened_in_thread(opening, raw_reads)) as rest:
                async for piece in rest:
                    yield piece
        elif opening.held is not None:
            yield opening.held

    def _decrypted(self, opening: _Opening, raw_reads: RawReads) -> Iterator[Chunk]:
        """Read and open the planned segments in this (worker) thread, exact sizes at a time."""
        read, plan = opening.read, opening.remaining()
        first = plan[0]
        header_next = not opening.header_checked and not first  # it lies right before segment 0
        if not opening.header_checked and first:  # the range starts further in: read it where it lies
            with raw_reads.open_raw(read.sealed_key, 0) as raw:
                opening.check_header(_read_into(raw, memoryview(bytearray(HEADER_SIZE)), read.key))
        start = 0 if header_next else read.layout.offset(first)
        with raw_reads.open_raw(read.sealed_key, start) as raw:
            if header_next:
                opening.check_header(_read_into(raw, memoryview(bytearray(HEADER_SIZE)), read.key))
            for index in plan:
                sealed = _read_into(raw, opening.buffers.take(read.layout.sealed_length(index)), read.key)
                piece = opening.open(index, sealed)
                if piece is not None:
                    yield piece
        if opening.held is not None:
            yield opening.held

    async def _opened_from_reader(self, opening: _Opening) -> AsyncIterator[Chunk]:
        """Stream the planned segments with one ranged read of the driver (an object store's
        GET) and open them in the pool, a few segments ahead; the pieces come out in order."""
        read, plan = opening.read, opening.remaining()
        layout = read.layout
        first = plan[0]
        if first:  # the range starts further in: check the header where it lies
            opening.check_header(await self.read_exactly(read.sealed_key, 0, HEADER_SIZE))
        start = 0 if not first else layout.offset(first)
        stop = layout.offset(plan[-1]) + layout.sealed_length(plan[-1])
        if plan[-1] == layout.segments:
            stop = layout.offset(plan[-1]) + OVERHEAD
        sizes = iter(([HEADER_SIZE] if not first else []) + [layout.sealed_length(i) for i in plan])
        blocks = _split(self.inner.reader(read.sealed_key, start, stop - start), sizes, read.key)
        indexes = iter(([-1] if not first else []) + plan)

        def open_next(block: Chunk) -> Job[tuple[int, Chunk]]:
            index = next(indexes)
            if index < 0:
                return lambda: (index, block)
            last = index == layout.segments
            return lambda: (index, open_segment(read.cipher, read.key, index, last, bytearray(block)))

        async with closing(self.ahead(blocks, open_next)) as opened:
            async for index, plain in opened:
                if index < 0:
                    opening.check_header(plain)
                    continue
                piece = opening.take(index, memoryview(plain))
                if piece is not None:
                    yield piece
        if opening.held is not None:
            yield opening.held

    async def _read_plaintext(self, key: str, offset: int, length: int | None) -> AsyncIterator[Chunk]:
        size = await self.inner.stat(key)
        if size is None:
            raise ObjectNotFound(key)
        self._check_plaintext_allowed(key)
        async with closing(self.inner.reader(key, offset, length)) as stream:
            async for chunk in stream:
                yield chunk

    async def read_exactly(self, sealed_key: str, offset: int, length: int) -> bytes:
        """``length`` stored bytes from ``offset``; fewer is an integrity failure."""
        async with closing(self.inner.reader(sealed_key, offset, length)) as stream:
            data = b"".join([chunk async for chunk in stream])
        if len(data) != length:
            raise IntegrityError(f"{sealed_key} is shorter than its size says", key=sealed_key)
        return data

    # -- helpers ----------------------------------------------------------------------------
    async def ahead(self, blocks: AsyncIterable[Chunk], work: Callable[[Chunk], Job[T]]) -> AsyncIterator[T]:
        """Run ``work`` for each block in the pool, a few blocks ahead; yield the results in order."""
        loop = asyncio.get_running_loop()
        pending: deque[asyncio.Future[T]] = deque()
        try:
            async for block in blocks:
                job = work(block)
                if len(block) <= INLINE and not pending:
                    yield job()
                    continue
                pending.append(loop.run_in_executor(self._pool, job))
                if len(pending) > LOOKAHEAD:
                    yield await pending.popleft()
            while pending:
                yield await pending.popleft()
        finally:
            for future in pending:
                future.cancel()
                future.add_done_callback(ignore_result)

    def submit(self, job: Job[T]) -> asyncio.Future[T]:
        return asyncio.get_running_loop().run_in_executor(self._pool, job)

    async def cipher(self, key: str) -> ObjectCipher:
        namespace, object_id = split_key(key)
        return ObjectCipher(await self.keys.data_key(namespace), self.segment_size, namespace, object_id)

    async def run(self, job: Job[T]) -> T:
        return await self.submit(job)

    def _layout(self, key: str, cipher_size: int) -> Layout:
        try:
            return Layout.parse(self.segment_size, cipher_size, True)
        except IntegrityError as exc:
            raise IntegrityError(f"{key}: {exc}", key=key) from None


@dataclass(frozen=True, slots=True)
class _Read:
    """One planned read of a sealed object: what ``_decrypted`` needs in its thread."""

    key: str
    sealed_key: str
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
        read = self.read
        plain = open_segment(read.cipher, read.key, index, index == read.layout.segments, sealed)
        return self.take(index, plain)

    def take(self, index: int, plain: memoryview) -> Chunk | None:
        """What to hand on of the opened segment ``index``, the next of the plan."""
        read, layout = self.read, self.read.layout
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


def inner_files(raw: RawReads | None) -> bool:
    return raw is not None and raw.files


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


async def _split(chunks: AsyncIterator[Chunk], sizes: Iterator[int], key: str) -> AsyncIterator[Chunk]:
    """Blocks of the given sizes, in order, cut from a stream; a short stream is an integrity failure."""
    pieces: list[Chunk] = []
    held = 0
    want = next(sizes, 0)
    async with closing(chunks):
        async for chunk in chunks:
            view = memoryview(chunk)
            while view and want:
                take = min(len(view), want - held)
                pieces.append(view[:take])
                view = view[take:]
                held += take
                if held == want:
                    yield pieces[0] if len(pieces) == 1 else b"".join(pieces)
                    pieces, held, want = [], 0, next(sizes, 0)
    if want:
        raise IntegrityError(f"{key} is shorter than its size says", key=key)


async def _unsuffixed(keys: AsyncIterator[str]) -> AsyncIterator[str]:
    seen: set[str] = set()
    async for key in keys:
        key = key.removesuffix(SUFFIX)
        if key not in seen:
            seen.add(key)
            yield key
