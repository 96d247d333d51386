"""Where the encryption wrapper opens a read: on the event loop while the page cache holds the
ciphertext, in a reader thread from the first segment that is not cached, and in a thread for every
read that starts while another is open on the loop. Each path yields the same bytes."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from cargobay.storage import encrypted
from cargobay.storage.base import Chunk, IntegrityError, RawReads
from cargobay.storage.encrypted import SUFFIX, EncryptedStore
from cargobay.storage.filesystem import FilesystemStore
from cargobay.storage.segments import HEADER_SIZE, OVERHEAD
from tests.support.storage import StaticKeys, fill, read_all

SEGMENT = 1000
NS = "aaaaaaaa-0000-4000-8000-000000000001"
KEY = f"{NS}/blobs/ab/ab01"
DATA = os.urandom(4 * SEGMENT + 300)  # four full segments, a partial one, the final one
READS = 1 + 6  # the header, then every segment of a whole read


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[EncryptedStore]:
    s = EncryptedStore(FilesystemStore(tmp_path), StaticKeys(), segment_size=SEGMENT)
    await fill(s, KEY, DATA, chunk=700)
    yield s
    await s.close()


def sealed_file(store: EncryptedStore) -> Path:
    assert isinstance(store.inner, FilesystemStore)
    return store.inner.root / "objects" / (KEY + SUFFIX)


class Threads:
    """Counts the reads (or rests of reads) handed to a reader thread."""

    def __init__(self, store: EncryptedStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        original = store._opened_in_thread

        def counted(opening: encrypted._Opening, raw: RawReads) -> AsyncIterator[Chunk]:
            self.count += 1
            return original(opening, raw)

        monkeypatch.setattr(store, "_opened_in_thread", counted)


def cached_for(calls: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page cache answers the first ``calls`` non-blocking reads, then nothing is cached."""
    original: Callable[..., bool] = encrypted._read_cached
    seen = 0

    def limited(fd: int | None, buffer: bytearray | memoryview, offset: int) -> bool:
        nonlocal seen
        seen += 1
        return seen <= calls and original(fd, buffer, offset)

    monkeypatch.setattr(encrypted, "_read_cached", limited)


async def test_a_cached_read_is_opened_on_the_loop(
    store: EncryptedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = Threads(store, monkeypatch)
    assert await read_all(store.reader(KEY)) == DATA
    assert await read_all(store.reader(KEY, 1500, 2000)) == DATA[1500:3500]
    assert threads.count == 0


@pytest.mark.parametrize("cached", range(READS))
async def test_the_first_uncached_segment_hands_the_rest_to_a_thread(
    store: EncryptedStore, monkeypatch: pytest.MonkeyPatch, cached: int
) -> None:
    """Whichever segment misses (the header, a middle one, the held last one, the final one)."""
    threads = Threads(store, monkeypatch)
    cached_for(cached, monkeypatch)
    assert await read_all(store.reader(KEY)) == DATA
    assert threads.count == 1


@pytest.mark.parametrize("cached", [0, 1, 2, 3])
@pytest.mark.parametrize(("offset", "length"), [(1500, 2000), (3999, 2), (4200, None), (0, 1)])
async def test_range_reads_hand_over_too(
    store: EncryptedStore,
    monkeypatch: pytest.MonkeyPatch,
    cached: int,
    offset: int,
    length: int | None,
) -> None:
    threads = Threads(store, monkeypatch)
    cached_for(cached, monkeypatch)
    wanted = DATA[offset:] if length is None else DATA[offset : offset + length]
    assert await read_all(store.reader(KEY, offset, length)) == wanted
    assert threads.count <= 1


async def test_a_segment_changed_after_the_hand_over_still_fails(
    store: EncryptedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed = sealed_file(store)
    data = bytearray(sealed.read_bytes())
    data[HEADER_SIZE + 3 * (SEGMENT + OVERHEAD) + 20] ^= 0x01  # inside segment 3
    sealed.write_bytes(bytes(data))
    threads = Threads(store, monkeypatch)
    cached_for(2, monkeypatch)  # the header and segment 0 on the loop, the rest in a thread
    received = bytearray()
    with pytest.raises(IntegrityError):
        async for chunk in store.reader(KEY):
            received += chunk
    assert threads.count == 1
    assert bytes(received) == DATA[: 3 * SEGMENT]


async def test_a_damaged_header_fails_on_the_loop(store: EncryptedStore) -> None:
    sealed = sealed_file(store)
    data = bytearray(sealed.read_bytes())
    data[0] ^= 0x01
    sealed.write_bytes(bytes(data))
    with pytest.raises(IntegrityError, match="header"):
        await read_all(store.reader(KEY))


async def test_a_read_begun_while_another_is_on_the_loop_goes_to_a_thread(
    store: EncryptedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = Threads(store, monkeypatch)
    first = store.reader(KEY)
    received = bytes(await anext(first))  # the first read now holds the loop's slot
    assert await read_all(store.reader(KEY)) == DATA
    assert threads.count == 1
    received += await read_all(first)
    assert received == DATA
    assert await read_all(store.reader(KEY)) == DATA  # the slot is free again
    assert threads.count == 1


async def test_a_read_abandoned_on_the_loop_frees_its_slot(
    store: EncryptedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads = Threads(store, monkeypatch)
    first = store.reader(KEY)
    await anext(first)
    await first.aclose()
    assert await read_all(store.reader(KEY)) == DATA
    assert threads.count == 0


async def test_a_read_that_fails_on_the_loop_frees_its_slot(
    store: EncryptedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed = sealed_file(store)
    good = sealed.read_bytes()
    bad = bytearray(good)
    bad[HEADER_SIZE + 20] ^= 0x01
    sealed.write_bytes(bytes(bad))
    with pytest.raises(IntegrityError):
        await read_all(store.reader(KEY))
    sealed.write_bytes(good)
    threads = Threads(store, monkeypatch)
    assert await read_all(store.reader(KEY)) == DATA
    assert threads.count == 0


async def test_an_object_dropped_from_the_page_cache_reads_back(store: EncryptedStore) -> None:
    """The kernel, not a stub, says what is cached: after POSIX_FADV_DONTNEED (where the file
    system honours it) the first read goes to the disk, and the bytes are the same."""
    sealed = sealed_file(store)
    fd = os.open(sealed, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    assert await read_all(store.reader(KEY)) == DATA
    assert await read_all(store.reader(KEY, 2500, 1000)) == DATA[2500:3500]


async def test_a_missing_object_is_not_found_on_either_path(tmp_path: Path) -> None:
    for inline in (True, False):
        s = EncryptedStore(FilesystemStore(tmp_path / str(inline)), StaticKeys(), inline_reads=inline)
        assert await s.stat(KEY) is None
        with pytest.raises(encrypted.ObjectNotFound):
            await read_all(s.reader(KEY))
        await s.close()


async def test_a_read_on_the_loop_lets_other_tasks_run_between_segments(
    store: EncryptedStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A consumer that never suspends (a socket that takes every write) must not keep the loop
    to itself for a whole blob: other requests get a turn after every segment."""
    threads = Threads(store, monkeypatch)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.create_task(ticker())
    seen = []
    try:
        async for _chunk in store.reader(KEY):
            seen.append(ticks)
    finally:
        task.cancel()
    assert threads.count == 0
    assert len(seen) == 5
    assert all(later > earlier for earlier, later in itertools.pairwise(seen))
