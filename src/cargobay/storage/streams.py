"""Moving bytes between the event loop and threads with bounded read-ahead (constant memory)."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sys
import threading
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
B = TypeVar("B", bound=bytes | memoryview)

CHUNK = 1024 * 1024
_DONE = object()


async def iterate_in_thread(make: Callable[[], Iterator[T]], depth: int = 4) -> AsyncIterator[T]:
    """Run a blocking generator in a thread, ``depth`` items ahead of the consumer.

    The generator is created inside the thread (so opening files blocks nobody), and it is closed
    when the consumer stops early; exceptions surface at the consumer. Items cross over through a
    deque and one future at a time, and the thread waits for credits in a C-level queue: on a
    1 GiB pull this hand-over ran a thousand times, and asyncio.Queue with threading.Semaphore (both
    pure Python) took a fifth of the event loop's own time.
    """
    loop = asyncio.get_running_loop()
    ready: deque[object] = deque()
    waiting: list[asyncio.Future[None]] = []  # the consumer's future while it waits for an item
    credits: queue.SimpleQueue[bool] = queue.SimpleQueue()  # True: send one more; False: stop
    for _ in range(depth):
        credits.put(True)
    stopped = threading.Event()

    def deliver(item: object) -> None:  # on the event loop
        ready.append(item)
        if waiting and not waiting[0].done():
            waiting[0].set_result(None)

    def produce() -> None:
        try:
            iterator = make()
            try:
                for item in iterator:
                    if not _wait_for_credit(credits, stopped):
                        return
                    loop.call_soon_threadsafe(deliver, item)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
            loop.call_soon_threadsafe(deliver, _DONE)
        except BaseException as exc:
            if not stopped.is_set():
                with contextlib.suppress(RuntimeError):  # the loop may be closed
                    loop.call_soon_threadsafe(deliver, exc)

    thread = threading.Thread(target=produce, name="cargobay-reader", daemon=True)
    thread.start()
    try:
        while True:
            while not ready:
                waiting.append(loop.create_future())
                try:
                    await waiting[0]
                finally:
                    waiting.clear()
            item = ready.popleft()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            credits.put(True)
            yield item  # type: ignore[misc]
    finally:
        stopped.set()
        credits.put(False)


def _wait_for_credit(credits: queue.SimpleQueue[bool], stopped: threading.Event) -> bool:
    """Block until the consumer wants another item (True) or has gone away (False)."""
    while True:
        try:
            credit = credits.get(timeout=0.5)
        except queue.Empty:
            if stopped.is_set():
                return False
            continue
        return credit and not stopped.is_set()


async def rechunk(chunks: AsyncIterable[B], size: int = CHUNK) -> AsyncIterator[B | bytes]:
    """Blocks of exactly ``size`` bytes (the last may be shorter) from chunks of any size.

    Each block is copied once (a join of the pieces); a chunk that already is a block passes as is.
    Exact sizes let the encryption envelope seal blocks as they come, without re-buffering.
    """
    pieces: list[bytes | memoryview] = []
    held = 0
    async for chunk in chunks:
        view = memoryview(chunk)
        while view:
            take = min(len(view), size - held)
            piece, view = view[:take], view[take:]
            held += take
            if held == size:
                if not pieces and len(piece) == len(chunk):
                    yield chunk  # the chunk is a block by itself
                else:
                    pieces.append(piece)
                    yield b"".join(pieces)
                pieces.clear()
                held = 0
            else:
                pieces.append(piece)
    if held:
        yield b"".join(pieces)


def ignore_result(future: asyncio.Future[Any]) -> None:
    """A done-callback that marks a future's error as seen (it is raised where the future is
    awaited, or deliberately dropped when nobody will await it)."""
    if not future.cancelled():
        future.exception()


class SerialOffload:
    """Runs blocking calls in order on one thread, up to ``depth`` calls ahead of the caller.

    Lets an upload receive the next block while the previous ones are being hashed or written;
    an error surfaces at a later ``submit`` or at ``drain``.
    """

    def __init__(self, name: str, depth: int = 3) -> None:
        self.name = name
        self.depth = depth
        self._executor: ThreadPoolExecutor | None = None
        self._pending: deque[asyncio.Future[Any]] = deque()

    async def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.name)
        future = asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)
        # The first error is raised by a later submit or by drain; the calls queued behind it may
        # fail too (a full disk) and are then never awaited: mark their errors seen.
        future.add_done_callback(ignore_result)
        self._pending.append(future)
        while len(self._pending) > self.depth:
            await self._pending.popleft()

    async def drain(self) -> None:
        """Wait for every call submitted; raises the first error."""
        while self._pending:
            await self._pending.popleft()

    async def close(self) -> None:
        """Wait for calls still running (their arguments may be reused afterwards), then stop."""
        pending, self._pending = self._pending, deque()
        for future in pending:
            with contextlib.suppress(BaseException):
                await future
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None


class BufferPool:
    """Equal-sized buffers for a stream's blocks, each reused once nothing refers to it any more.

    A fresh ``bytearray`` is zero-filled (for 1 MiB blocks, a memset costing about a fifth of an
    AES-GCM pass over them) and cold in the cache; a buffer whose block was sent or written and then
    dropped is neither. A buffer is handed out again only when the pool holds the sole reference to
    it: a consumer that kept a block (a memoryview keeps its buffer alive) makes the pool allocate
    a new one, so a block never changes under anyone holding it. Not thread-safe: one thread takes.
    """

    def __init__(self, size: int, keep: int = 8) -> None:
        self.size = size
        self.keep = keep
        self._buffers: list[bytearray] = []

    def take(self, length: int) -> memoryview:
        """A writable view of ``length`` bytes; its contents are arbitrary. Only full-size blocks
        are pooled: a short one (the last of a stream, or a small object) gets a buffer of its own."""
        if length != self.size:
            return memoryview(bytearray(length))
        for buffer in self._buffers:
            if sys.getrefcount(buffer) == _ONLY_POOLED:
                return memoryview(buffer)
        buffer = bytearray(self.size)
        if len(self._buffers) < self.keep:
            self._buffers.append(buffer)
        return memoryview(buffer)


def _unshared_count() -> int:
    """What ``sys.getrefcount`` says, in ``BufferPool.take``'s loop, of a buffer nobody else holds.

    On CPython 3.11 that is 3 (the pool's list, the loop variable, getrefcount's argument), but
    newer interpreters may borrow the loop variable's reference: measured on the running one, with
    the same loop, rather than assumed, so a held buffer can never look free.
    """
    for buffer in [bytearray(1)]:
        return sys.getrefcount(buffer)
    raise AssertionError("unreachable")


_ONLY_POOLED = _unshared_count()


@contextlib.asynccontextmanager
async def closing(iterator: AsyncIterator[T]) -> AsyncIterator[AsyncIterator[T]]:
    """Close an async generator on leaving the block, also when it was not run to its end."""
    try:
        yield iterator
    finally:
        close = getattr(iterator, "aclose", None)
        if close is not None:
            await close()


def file_chunks(path: str, offset: int, length: int | None, chunk: int = CHUNK) -> Iterator[bytes]:
    """Blocking read of a byte range of a file in chunks."""
    with open(path, "rb", buffering=0) as f:
        if offset:
            f.seek(offset)
        remaining = length
        while remaining is None or remaining > 0:
            want = chunk if remaining is None else min(chunk, remaining)
            data = f.read(want)
            if not data:
                break
            if remaining is not None:
                remaining -= len(data)
            yield data
