"""Moving bytes between the event loop and threads with bounded read-ahead (constant memory)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

CHUNK = 1024 * 1024
_DONE = object()


async def iterate_in_thread(make: Callable[[], Iterator[T]], depth: int = 4) -> AsyncIterator[T]:
    """Run a blocking generator in a thread, ``depth`` items ahead of the consumer.

    The generator is created inside the thread (so opening files blocks nobody), and it is closed
    when the consumer stops early; exceptions surface at the consumer.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    slots = threading.Semaphore(depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            iterator = make()
            try:
                for item in iterator:
                    while not slots.acquire(timeout=0.5):
                        if stop.is_set():
                            return
                    if stop.is_set():
                        return
                    loop.call_soon_threadsafe(queue.put_nowait, item)
            finally:
                close = getattr(iterator, "close", None)
                if close is not None:
                    close()
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)
        except BaseException as exc:
            if not stop.is_set():
                with contextlib.suppress(RuntimeError):  # the loop may be closed
                    loop.call_soon_threadsafe(queue.put_nowait, exc)

    thread = threading.Thread(target=produce, name="cargobay-reader", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            slots.release()
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        slots.release()


async def rechunk(chunks: AsyncIterable[bytes], size: int = CHUNK) -> AsyncIterator[bytes]:
    """Coalesce small network chunks into blocks of ``size`` bytes (the last one may be shorter)."""
    buffer = bytearray()
    async for chunk in chunks:
        if not chunk:
            continue
        if not buffer and len(chunk) >= size:
            yield bytes(chunk)
            continue
        buffer += chunk
        if len(buffer) >= size:
            yield bytes(buffer)
            buffer.clear()
    if buffer:
        yield bytes(buffer)


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


async def exact_blocks(chunks: AsyncIterable[bytes], sizes: Iterable[int]) -> AsyncIterator[list[memoryview]]:
    """Cut a stream into blocks of exactly ``sizes``, each given as the views of the chunks it spans
    (nothing is copied). Raises EOFError when the stream ends early; bytes after the last block are
    ignored."""
    wanted = iter(sizes)
    need = next(wanted, None)
    parts: list[memoryview] = []
    have = 0
    async for chunk in chunks:
        view = memoryview(chunk)
        while need is not None and view:
            take = min(need - have, len(view))
            parts.append(view[:take])
            have += take
            view = view[take:]
            if have == need:
                yield parts
                parts = []
                have = 0
                need = next(wanted, None)
        if need is None:
            return
    if need is not None:
        raise EOFError(f"stream ended {need - have} bytes short of a block")
