"""The BlobStore contract, run against every driver and the encryption wrapper (fixture ``store``)."""

from __future__ import annotations

import asyncio
import os

import pytest

from cargobay.storage.base import BlobStore, ObjectNotFound
from tests.support.storage import chunks_of, fill, keys_of, read_all

NS = "4f6a0c1e-0000-4000-8000-000000000001"
DATA = bytes(range(256)) * 40 + b"tail"  # 10244 bytes: two and a half small segments


def blob_key(oid: str, ns: str = NS) -> str:
    return f"{ns}/blobs/{oid[:2]}/{oid}"


def upload_key(oid: str, ns: str = NS) -> str:
    return f"{ns}/uploads/{oid}"


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
    await fill(store, upload_key("ef05"), b"staged")
    assert await keys_of(store.list(NS)) == [blob_key("ab01"), blob_key("ab02"), blob_key("cd03")]
    assert await keys_of(store.list(f"{NS}/blobs/ab")) == [blob_key("ab01"), blob_key("ab02")]
    assert await keys_of(store.list(f"{NS}/nothing")) == []


# -- staged objects ---------------------------------------------------------------------------
async def test_append_creates_and_grows_a_staged_object(store: BlobStore) -> None:
    key = upload_key("ab01")
    assert await store.staged_size(key) is None
    assert await fill(store, key, DATA[:3000]) == 3000
    assert await fill(store, key, DATA[3000:]) == len(DATA)
    assert await store.staged_size(key) == len(DATA)
    assert await read_all(store.staged_reader(key)) == DATA


async def test_append_of_nothing_creates_an_empty_staged_object(store: BlobStore) -> None:
    key = upload_key("ab01")
    assert await fill(store, key, b"") == 0
    assert await store.staged_size(key) == 0
    assert await read_all(store.staged_reader(key)) == b""


async def test_append_of_nothing_leaves_a_staged_object_as_it_was(store: BlobStore) -> None:
    key = upload_key("ab01")
    await fill(store, key, DATA[:5000])  # with small segments: a partial last segment
    assert await store.append(key, chunks_of(b"", 1)) == 5000
    assert await store.staged_size(key) == 5000
    assert await read_all(store.staged_reader(key)) == DATA[:5000]


async def test_staged_objects_are_not_committed_ones(store: BlobStore) -> None:
    await fill(store, upload_key("ab01"), DATA)
    assert await store.stat(upload_key("ab01")) is None
    assert await keys_of(store.list(NS)) == []


@pytest.mark.parametrize(("offset", "length"), [(0, None), (5, 3995), (3999, 3), (8000, None), (10240, 100)])
async def test_staged_reader_returns_the_requested_range(
    store: BlobStore, offset: int, length: int | None
) -> None:
    await fill(store, upload_key("ab01"), DATA, chunk=777)
    expected = DATA[offset:] if length is None else DATA[offset : offset + length]
    assert await read_all(store.staged_reader(upload_key("ab01"), offset, length)) == expected


@pytest.mark.parametrize("size", [0, 1, 3999, 4000, 4001, 9000, len(DATA) - 1, len(DATA)])
async def test_truncate_cuts_a_staged_object_back(store: BlobStore, size: int) -> None:
    key = upload_key("ab01")
    await fill(store, key, DATA)
    await store.truncate(key, size)
    assert await store.staged_size(key) == size
    assert await read_all(store.staged_reader(key)) == DATA[:size]
    assert await fill(store, key, b"more") == size + 4
    assert await read_all(store.staged_reader(key)) == DATA[:size] + b"more"


async def test_truncate_of_an_absent_object_raises_not_found(store: BlobStore) -> None:
    with pytest.raises(ObjectNotFound):
        await store.truncate(upload_key("ab01"), 0)


async def test_commit_publishes_and_removes_the_staged_object(store: BlobStore) -> None:
    await fill(store, upload_key("ab01"), DATA, chunk=333)
    await store.commit(upload_key("ab01"), blob_key("ab01"))
    assert await store.staged_size(upload_key("ab01")) is None
    assert await store.stat(blob_key("ab01")) == len(DATA)
    assert await read_all(store.reader(blob_key("ab01"))) == DATA
    assert await keys_of(store.list_staged(NS)) == []


async def test_commit_of_an_empty_staged_object(store: BlobStore) -> None:
    await fill(store, upload_key("ab01"), b"")
    await store.commit(upload_key("ab01"), blob_key("ab01"))
    assert await store.stat(blob_key("ab01")) == 0
    assert await read_all(store.reader(blob_key("ab01"))) == b""


async def test_commit_replaces_an_existing_object(store: BlobStore) -> None:
    await store.put(blob_key("ab01"), b"old")
    await fill(store, upload_key("ab01"), DATA)
    await store.commit(upload_key("ab01"), blob_key("ab01"))
    assert await read_all(store.reader(blob_key("ab01"))) == DATA


async def test_commit_of_an_absent_object_raises_not_found(store: BlobStore) -> None:
    with pytest.raises(ObjectNotFound):
        await store.commit(upload_key("ab01"), blob_key("ab01"))
    assert await store.stat(blob_key("ab01")) is None


async def test_discard_removes_and_absent_is_no_error(store: BlobStore) -> None:
    await fill(store, upload_key("ab01"), DATA)
    await store.discard(upload_key("ab01"))
    await store.discard(upload_key("ab01"))
    assert await store.staged_size(upload_key("ab01")) is None


async def test_list_staged_names_staged_objects(store: BlobStore) -> None:
    await fill(store, upload_key("ab01"), b"x")
    await fill(store, upload_key("ab02"), b"")
    await store.put(blob_key("cd03"), b"committed")
    assert await keys_of(store.list_staged(NS)) == [upload_key("ab01"), upload_key("ab02")]


# -- large objects and streaming ----------------------------------------------------------------
LARGE = os.urandom(5 * 1024 * 1024 + 12345)


async def test_large_object_in_uneven_appends_reads_back_in_bounded_chunks(store: BlobStore) -> None:
    key = upload_key("ab01")
    sizes = [1, 1024 * 1024 - 1, 3 * 1024 * 1024 + 17, 65536, len(LARGE)]
    start = 0
    for size in sizes:
        piece = LARGE[start : start + size]
        assert await store.append(key, chunks_of(piece, 300_000)) == start + len(piece)
        start += len(piece)
    assert start == len(LARGE)
    await store.commit(key, blob_key("ab01"))
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
        await fill(store, upload_key(f"cd{i:02}"), LARGE[i:], chunk=123_456)
        await store.commit(upload_key(f"cd{i:02}"), blob_key(f"cd{i:02}"))

    results = await asyncio.gather(
        *(read_all(store.reader(blob_key("ab01"))) for _ in range(3)), *(upload(i) for i in range(3))
    )
    assert results[:3] == [LARGE] * 3
    for i in range(3):
        assert await read_all(store.reader(blob_key(f"cd{i:02}"))) == LARGE[i:]
