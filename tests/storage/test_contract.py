"""The BlobStore contract, run against every driver and the encryption wrapper (fixture ``store``)."""

from __future__ import annotations

import asyncio
import os

import pytest

from cargobay.storage.base import BlobStore, ObjectNotFound, WriterLost
from tests.support.storage import fill, keys_of, read_all, write_chunks

NS = "4f6a0c1e-0000-4000-8000-000000000001"
DATA = bytes(range(256)) * 40 + b"tail"  # 10244 bytes: two and a half small segments


def blob_key(oid: str, ns: str = NS) -> str:
    return f"{ns}/blobs/{oid[:2]}/{oid}"


# -- committed objects ------------------------------------------------------------------------
async def test_absent_object_has_no_size(store: BlobStore) -> None:
    assert await store.stat(blob_key("ab01")) is None


async def test_reading_an_absent_object_raises_not_found(store: BlobStore) -> None:
    with pytest.raises(ObjectNotFound):
        await read_all(store.reader(blob_key("ab01")))


async def test_put_object_reads_back_with_its_size(store: BlobStore) -> None:
    await store.put(blob_key("ab01"), DATA)
    assert await store.stat(blob_key("ab01")) == len(DATA)
    assert await read_all(store.reader(blob_key("ab01"))) == DATA


async def test_put_replaces_the_previous_object(store: BlobStore) -> None:
    await store.put(blob_key("ab01"), DATA)
    await store.put(blob_key("ab01"), b"second")
    assert await read_all(store.reader(blob_key("ab01"))) == b"second"
    assert await store.stat(blob_key("ab01")) == 6


async def test_empty_object(store: BlobStore) -> None:
    await store.put(blob_key("ab01"), b"")
    assert await store.stat(blob_key("ab01")) == 0
    assert await read_all(store.reader(blob_key("ab01"))) == b""


@pytest.mark.parametrize(
    ("offset", "length"),
    [(0, None), (0, 1), (1, 10), (3999, 2), (4000, 4000), (4001, 5000), (8000, None), (10243, None), (0, 0)],
)
async def test_reader_returns_the_requested_range(store: BlobStore, offset: int, length: int | None) -> None:
    await store.put(blob_key("ab01"), DATA)
    expected = DATA[offset:] if length is None else DATA[offset : offset + length]
    assert await read_all(store.reader(blob_key("ab01"), offset, length)) == expected


async def test_reader_stops_at_the_end_of_the_object(store: BlobStore) -> None:
    await store.put(blob_key("ab01"), DATA)
    assert await read_all(store.reader(blob_key("ab01"), 10000, 1000)) == DATA[10000:]
    assert await read_all(store.reader(blob_key("ab01"), len(DATA))) == b""


async def test_delete_removes_and_absent_is_no_error(store: BlobStore) -> None:
    await store.put(blob_key("ab01"), DATA)
    await store.delete(blob_key("ab01"))
    await store.delete(blob_key("ab01"))
    assert await store.stat(blob_key("ab01")) is None


async def test_list_names_committed_objects_under_a_prefix(store: BlobStore) -> None:
    other = "4f6a0c1e-0000-4000-8000-000000000002"
    for key in (blob_key("ab01"), blob_key("ab02"), blob_key("cd03"), blob_key("ab04", other)):
        await store.put(key, b"x")
    state = await write_chunks(store, blob_key("ef05"), b"staged")  # not an object (yet)
    listed = [blob_key("ab01"), blob_key("ab02"), blob_key("cd03")]
    assert await keys_of(store.list(f"{NS}/blobs")) == listed
    assert set(listed) <= set(await keys_of(store.list(NS)))
    assert blob_key("ef05") not in await keys_of(store.list(NS))
    await store.discard(blob_key("ef05"), state)
    assert await keys_of(store.list(f"{NS}/blobs/ab")) == [blob_key("ab01"), blob_key("ab02")]
    assert await keys_of(store.list(f"{NS}/nothing")) == []


async def test_delete_many_removes_each_and_absent_is_no_error(store: BlobStore) -> None:
    await store.put(blob_key("ab01"), DATA)
    await store.put(blob_key("ab02"), b"x")
    await store.delete_many([blob_key("ab01"), blob_key("ab02"), blob_key("ab03")])
    assert await store.stat(blob_key("ab01")) is None
    assert await store.stat(blob_key("ab02")) is None


# -- writers ----------------------------------------------------------------------------------
async def test_a_writer_publishes_on_commit(store: BlobStore) -> None:
    assert await fill(store, blob_key("ab01"), DATA, chunk=333) == len(DATA)
    assert await store.stat(blob_key("ab01")) == len(DATA)
    assert await read_all(store.reader(blob_key("ab01"))) == DATA


async def test_a_writer_of_nothing_commits_an_empty_object(store: BlobStore) -> None:
    assert await fill(store, blob_key("ab01"), b"") == 0
    assert await store.stat(blob_key("ab01")) == 0
    assert await read_all(store.reader(blob_key("ab01"))) == b""


async def test_nothing_is_visible_before_commit(store: BlobStore) -> None:
    writer = await store.writer(blob_key("ab01"))
    await writer.write(DATA)
    state = await writer.suspend()
    await writer.close()
    assert await store.stat(blob_key("ab01")) is None
    assert await keys_of(store.list(f"{NS}/blobs")) == []
    await store.discard(blob_key("ab01"), state)


@pytest.mark.parametrize("cuts", [[3000], [1, 3999, 4000], [4000, 4000], [10243], [2, 2, 2, 5000, 7]])
async def test_a_writer_continues_from_its_state(store: BlobStore, cuts: list[int]) -> None:
    """Each session continues the last one's state (another process could): uneven sizes, also
    ending inside a (small) segment or on its boundary."""
    key, state, start = blob_key("ab01"), None, 0
    for cut in cuts:
        state = await write_chunks(store, key, DATA[start : start + cut], chunk=777, state=state)
        start += cut
    writer = await store.writer(key, state)
    assert writer.size == start
    await writer.write(DATA[start:])
    assert writer.size == len(DATA)
    assert await writer.commit() == len(DATA)
    assert await read_all(store.reader(key)) == DATA


async def test_an_empty_session_leaves_the_state_usable(store: BlobStore) -> None:
    key = blob_key("ab01")
    state = await write_chunks(store, key, DATA[:5000])
    state = await write_chunks(store, key, b"", state=state)
    state = await write_chunks(store, key, DATA[5000:], state=state)
    writer = await store.writer(key, state)
    await writer.commit()
    assert await read_all(store.reader(key)) == DATA


async def test_a_failed_session_leaves_the_previous_state_usable(store: BlobStore) -> None:
    """A chunk that broke off (written, never suspended) leaves no trace."""
    key = blob_key("ab01")
    state = await write_chunks(store, key, DATA[:5000])
    writer = await store.writer(key, state)
    await writer.write(b"junk" * 1500)
    await writer.close()
    writer = await store.writer(key, state)
    assert writer.size == 5000
    await writer.write(DATA[5000:])
    await writer.commit()
    assert await read_all(store.reader(key)) == DATA


async def test_a_state_that_was_not_recorded_does_not_spoil_the_recorded_one(store: BlobStore) -> None:
    """A session that suspended but whose state never reached the database (it failed after)."""
    key = blob_key("ab01")
    recorded = await write_chunks(store, key, DATA[:4500])
    await write_chunks(store, key, b"lost" * 1000, state=recorded)
    again = await write_chunks(store, key, DATA[4500:9000], state=recorded)
    writer = await store.writer(key, again)
    await writer.write(DATA[9000:])
    await writer.commit()
    assert await read_all(store.reader(key)) == DATA


async def test_commit_replaces_an_existing_object(store: BlobStore) -> None:
    await store.put(blob_key("ab01"), b"old")
    await fill(store, blob_key("ab01"), DATA)
    assert await read_all(store.reader(blob_key("ab01"))) == DATA


async def test_cancel_drops_everything_written(store: BlobStore) -> None:
    key = blob_key("ab01")
    state = await write_chunks(store, key, DATA[:5000])
    writer = await store.writer(key, state)
    await writer.write(DATA[5000:])
    await writer.cancel()
    assert await store.stat(key) is None
    with pytest.raises(WriterLost):
        await store.writer(key, state)


async def test_discard_drops_a_suspended_writer(store: BlobStore) -> None:
    key = blob_key("ab01")
    state = await write_chunks(store, key, DATA[:5000])
    await store.discard(key, state)
    await store.discard(key, state)
    with pytest.raises(WriterLost):
        await store.writer(key, state)
    assert await store.stat(key) is None


async def test_a_committed_writer_cannot_continue(store: BlobStore) -> None:
    key = blob_key("ab01")
    state = await write_chunks(store, key, DATA[:5000])
    writer = await store.writer(key, state)
    await writer.commit()
    with pytest.raises(WriterLost):
        await store.writer(key, state)
    assert await read_all(store.reader(key)) == DATA[:5000]


async def test_writers_leave_no_temporary_objects(store: BlobStore) -> None:
    key, state, start = blob_key("ab01"), None, 0
    for cut in (1000, 3500, 2000):
        state = await write_chunks(store, key, DATA[start : start + cut], state=state)
        start += cut
    writer = await store.writer(key, state)
    await writer.write(DATA[start:])
    await writer.commit()
    other = blob_key("cd02")
    state = await write_chunks(store, other, DATA[:4100])
    state = await write_chunks(store, other, DATA[4100:4200], state=state)
    writer = await store.writer(other, state)
    await writer.cancel()
    assert await keys_of(store.list(NS)) == [blob_key("ab01")]


# -- large objects and streaming ----------------------------------------------------------------
LARGE = os.urandom(5 * 1024 * 1024 + 12345)


async def test_large_object_in_uneven_sessions_reads_back_in_bounded_chunks(store: BlobStore) -> None:
    key = blob_key("ab01")
    sizes = [1, 1024 * 1024 - 1, 3 * 1024 * 1024 + 17, 65536, len(LARGE)]
    start, state = 0, None
    for size in sizes:
        piece = LARGE[start : start + size]
        state = await write_chunks(store, key, piece, chunk=300_000, state=state)
        start += len(piece)
    assert start == len(LARGE)
    writer = await store.writer(key, state)
    assert await writer.commit() == len(LARGE)
    largest = 0
    received = bytearray()
    async for chunk in store.reader(blob_key("ab01")):
        largest = max(largest, len(chunk))
        received += chunk
    assert bytes(received) == LARGE
    assert largest <= 2 * 1024 * 1024


@pytest.mark.parametrize(
    ("offset", "length"),
    [(1024 * 1024 - 5, 10), (2 * 1024 * 1024, 1024 * 1024), (1, 5 * 1024 * 1024), (5 * 1024 * 1024, None)],
)
async def test_large_object_ranges_across_segment_boundaries(
    store: BlobStore, offset: int, length: int | None
) -> None:
    await store.put(blob_key("ab01"), LARGE)
    expected = LARGE[offset:] if length is None else LARGE[offset : offset + length]
    assert await read_all(store.reader(blob_key("ab01"), offset, length)) == expected


async def test_a_consumer_may_keep_every_chunk_it_was_given(store: BlobStore) -> None:
    """Chunks are never recycled under a consumer that holds on to them (no copy taken)."""
    await store.put(blob_key("ab01"), LARGE)
    kept = [chunk async for chunk in store.reader(blob_key("ab01"))]
    assert b"".join(kept) == LARGE


async def test_a_reader_may_stop_early(store: BlobStore) -> None:
    await store.put(blob_key("ab01"), LARGE)
    reader = store.reader(blob_key("ab01"))
    first = await anext(reader)
    assert LARGE.startswith(first)
    await reader.aclose()  # type: ignore[attr-defined]
    assert await read_all(store.reader(blob_key("ab01"))) == LARGE


async def test_concurrent_readers_and_writers(store: BlobStore) -> None:
    await store.put(blob_key("ab01"), LARGE)

    async def upload(i: int) -> None:
        await fill(store, blob_key(f"cd{i:02}"), LARGE[i:], chunk=123_456)

    results = await asyncio.gather(
        *(read_all(store.reader(blob_key("ab01"))) for _ in range(3)), *(upload(i) for i in range(3))
    )
    assert results[:3] == [LARGE] * 3
    for i in range(3):
        assert await read_all(store.reader(blob_key(f"cd{i:02}"))) == LARGE[i:]
