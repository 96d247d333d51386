"""Sealed objects that were changed on disk are errors, and no read ever yields a wrong byte."""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cargobay.storage.base import IntegrityError
from cargobay.storage.encrypted import SUFFIX, EncryptedStore
from cargobay.storage.filesystem import FilesystemStore
from cargobay.storage.segments import HEADER_SIZE, OVERHEAD
from tests.support.storage import StaticKeys, fill, read_all, write_chunks

SEGMENT = 1000
STEP = SEGMENT + OVERHEAD
NS_A = "aaaaaaaa-0000-4000-8000-000000000001"
NS_B = "bbbbbbbb-0000-4000-8000-000000000002"
DATA = os.urandom(3 * SEGMENT + 500)  # three full segments, a partial one, the final one
OTHER = os.urandom(len(DATA))
SIZE = HEADER_SIZE + len(DATA) + 5 * OVERHEAD


def key(oid: str, ns: str = NS_A) -> str:
    return f"{ns}/blobs/{oid[:2]}/{oid}"


@pytest.fixture(params=[True, False], ids=["inline", "threaded"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[EncryptedStore]:
    """Both read paths: segments opened on the event loop, and in a reader thread."""
    s = EncryptedStore(
        FilesystemStore(tmp_path), StaticKeys(), segment_size=SEGMENT, inline_reads=request.param
    )
    await fill(s, key("ab01"), DATA, chunk=700)
    await s.put(key("cd02"), OTHER)
    await s.put(key("ab01", NS_B), OTHER)
    yield s
    await s.close()


def sealed_file(store: EncryptedStore, k: str) -> Path:
    assert isinstance(store.inner, FilesystemStore)
    return store.inner.root / "objects" / (k + SUFFIX)


async def assert_fails_without_wrong_bytes(
    store: EncryptedStore, k: str, expected: bytes, offset: int = 0, length: int | None = None
) -> None:
    """The read raises IntegrityError; whatever it yielded before is the true content."""
    wanted = expected[offset:] if length is None else expected[offset : offset + length]
    received = bytearray()
    with pytest.raises(IntegrityError):
        async for chunk in store.reader(k, offset, length):
            received += chunk
            assert wanted.startswith(bytes(received))


async def test_untouched_objects_read_back(store: EncryptedStore) -> None:
    assert sealed_file(store, key("ab01")).stat().st_size == SIZE
    assert await read_all(store.reader(key("ab01"))) == DATA
    assert await read_all(store.reader(key("cd02"))) == OTHER


@pytest.mark.parametrize(
    "position",
    [
        0,  # magic
        HEADER_SIZE - 1,  # segment size
        HEADER_SIZE,  # first nonce
        HEADER_SIZE + 12,  # first ciphertext byte
        HEADER_SIZE + STEP - 1,  # first tag
        HEADER_SIZE + STEP + 500,  # second segment
        HEADER_SIZE + 3 * STEP + 100,  # partial segment
        SIZE - OVERHEAD - 1,  # tag of the partial segment
        SIZE - OVERHEAD,  # nonce of the final segment
        SIZE - 1,  # tag of the final segment
    ],
)
async def test_a_flipped_byte_fails_the_read(store: EncryptedStore, position: int) -> None:
    path = sealed_file(store, key("ab01"))
    data = bytearray(path.read_bytes())
    data[position] ^= 0x01
    path.write_bytes(data)
    await assert_fails_without_wrong_bytes(store, key("ab01"), DATA)


@pytest.mark.parametrize(("offset", "length"), [(0, 10), (SEGMENT + 1, 10), (2 * SEGMENT - 5, 10)])
async def test_a_flipped_byte_fails_range_reads_of_its_segment(
    store: EncryptedStore, offset: int, length: int
) -> None:
    path = sealed_file(store, key("ab01"))
    data = bytearray(path.read_bytes())
    data[HEADER_SIZE + (offset // SEGMENT) * STEP + 20] ^= 0x80
    path.write_bytes(data)
    await assert_fails_without_wrong_bytes(store, key("ab01"), DATA, offset, length)


@pytest.mark.parametrize(
    "size",
    [
        0,
        5,
        HEADER_SIZE,
        HEADER_SIZE + OVERHEAD,
        HEADER_SIZE + STEP,  # whole segments only, no final segment
        HEADER_SIZE + STEP + 10,
        SIZE - OVERHEAD,  # the final segment cut off
        SIZE - 1,
    ],
)
async def test_a_truncated_object_fails_the_read(store: EncryptedStore, size: int) -> None:
    path = sealed_file(store, key("ab01"))
    os.truncate(path, size)
    await assert_fails_without_wrong_bytes(store, key("ab01"), DATA)


async def test_a_truncated_object_fails_reads_of_its_end(store: EncryptedStore) -> None:
    os.truncate(sealed_file(store, key("ab01")), HEADER_SIZE + 2 * STEP)
    await assert_fails_without_wrong_bytes(store, key("ab01"), DATA, len(DATA) - 10)


@pytest.mark.parametrize(
    "extra",
    [b"\x00", random.Random(1).randbytes(OVERHEAD), random.Random(2).randbytes(STEP)],
    ids=["one-byte", "one-tag", "one-segment"],
)
async def test_an_extended_object_fails_the_read(store: EncryptedStore, extra: bytes) -> None:
    path = sealed_file(store, key("ab01"))
    path.write_bytes(path.read_bytes() + extra)
    await assert_fails_without_wrong_bytes(store, key("ab01"), DATA)


async def test_a_repeated_final_segment_fails_the_read(store: EncryptedStore) -> None:
    path = sealed_file(store, key("ab01"))
    data = path.read_bytes()
    path.write_bytes(data + data[-OVERHEAD:])
    await assert_fails_without_wrong_bytes(store, key("ab01"), DATA)


async def test_swapped_segments_fail_the_read(store: EncryptedStore) -> None:
    path = sealed_file(store, key("ab01"))
    data = path.read_bytes()
    first, second = data[HEADER_SIZE : HEADER_SIZE + STEP], data[HEADER_SIZE + STEP : HEADER_SIZE + 2 * STEP]
    path.write_bytes(data[:HEADER_SIZE] + second + first + data[HEADER_SIZE + 2 * STEP :])
    await assert_fails_without_wrong_bytes(store, key("ab01"), DATA)
    await assert_fails_without_wrong_bytes(store, key("ab01"), DATA, SEGMENT, 10)


async def test_a_segment_spliced_from_another_object_fails_the_read(store: EncryptedStore) -> None:
    path = sealed_file(store, key("ab01"))
    donor = sealed_file(store, key("cd02")).read_bytes()
    data = path.read_bytes()
    path.write_bytes(
        data[: HEADER_SIZE + STEP]
        + donor[HEADER_SIZE + STEP : HEADER_SIZE + 2 * STEP]
        + data[HEADER_SIZE + 2 * STEP :]
    )
    await assert_fails_without_wrong_bytes(store, key("ab01"), DATA)


async def test_swapped_objects_fail_both_reads(store: EncryptedStore) -> None:
    one, two = sealed_file(store, key("ab01")), sealed_file(store, key("cd02"))
    data_one, data_two = one.read_bytes(), two.read_bytes()
    one.write_bytes(data_two)
    two.write_bytes(data_one)
    await assert_fails_without_wrong_bytes(store, key("ab01"), DATA)
    await assert_fails_without_wrong_bytes(store, key("cd02"), OTHER)


async def test_an_object_moved_to_another_namespace_fails_the_read(store: EncryptedStore) -> None:
    """Same object id in two registries: another data key, another namespace in the associated data."""
    one, two = sealed_file(store, key("ab01")), sealed_file(store, key("ab01", NS_B))
    data_one, data_two = one.read_bytes(), two.read_bytes()
    one.write_bytes(data_two)
    two.write_bytes(data_one)
    await assert_fails_without_wrong_bytes(store, key("ab01"), DATA)
    await assert_fails_without_wrong_bytes(store, key("ab01", NS_B), OTHER)


async def test_the_same_data_key_does_not_open_another_namespace(tmp_path: Path) -> None:
    """Even under one key, the namespace in the associated data tells registries apart."""
    shared = os.urandom(32)

    class OneKey:
        async def data_key(self, namespace: str) -> bytes:
            return shared

    store = EncryptedStore(FilesystemStore(tmp_path), OneKey(), segment_size=SEGMENT)
    await store.put(key("ab01"), DATA)
    target = sealed_file(store, key("ab01", NS_B))
    target.parent.mkdir(parents=True)
    target.write_bytes(sealed_file(store, key("ab01")).read_bytes())
    await assert_fails_without_wrong_bytes(store, key("ab01", NS_B), DATA)
    await store.close()


async def test_a_plaintext_file_in_place_of_a_sealed_object_is_refused(store: EncryptedStore) -> None:
    """Downgrade: deleting the sealed object and planting a plaintext one does not serve forged bytes."""
    sealed = sealed_file(store, key("ab01"))
    sealed.unlink()
    sealed.with_name(sealed.name.removesuffix(SUFFIX)).write_bytes(b"forged")
    with pytest.raises(IntegrityError):
        await read_all(store.reader(key("ab01")))
    with pytest.raises(IntegrityError):
        await store.stat(key("ab01"))


async def test_a_tampered_partial_segment_stops_the_upload(store: EncryptedStore) -> None:
    """The partial last segment of a suspended upload is sealed beside it; changed, it does not open."""
    state = await write_chunks(store, key("ef03"), DATA[:1500])
    assert isinstance(store.inner, FilesystemStore)
    tail = store.inner.object_path(state["tail"])
    data = bytearray(tail.read_bytes())
    data[20] ^= 0x01
    tail.write_bytes(data)
    with pytest.raises(IntegrityError):
        await store.writer(key("ef03"), state)


async def test_a_partial_segment_of_another_upload_does_not_open(store: EncryptedStore) -> None:
    one = await write_chunks(store, key("ef03"), DATA[:1500])
    two = await write_chunks(store, key("ef04"), OTHER[:1500])
    with pytest.raises(IntegrityError):
        await store.writer(key("ef03"), {**one, "tail": two["tail"]})


async def test_no_plaintext_reaches_the_inner_store(store: EncryptedStore) -> None:
    marker = b"MARKER-" + os.urandom(8).hex().encode()
    state = await write_chunks(store, key("ef04"), marker * 300, chunk=999)
    state = await write_chunks(store, key("ef04"), marker * 3, state=state)
    await store.put(key("ef05"), marker)
    assert isinstance(store.inner, FilesystemStore)
    for path in store.inner.root.rglob("*"):
        if path.is_file():
            assert marker not in path.read_bytes(), path
    writer = await store.writer(key("ef04"), state)
    await writer.commit()
    for path in store.inner.root.rglob("*"):
        if path.is_file():
            assert marker not in path.read_bytes(), path


async def test_a_damaged_final_segment_fails_reads_of_the_last_segment(store: EncryptedStore) -> None:
    path = sealed_file(store, key("ab01"))
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(data)
    await assert_fails_without_wrong_bytes(store, key("ab01"), DATA, 3 * SEGMENT + 10, 5)
    assert await read_all(store.reader(key("ab01"), 10, 100)) == DATA[10:110]  # intact segments read true
