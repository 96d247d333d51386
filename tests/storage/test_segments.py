"""The sealed format: sizes derive from ciphertext sizes; any write pattern reads back exactly."""

from __future__ import annotations

import asyncio
import os
import tempfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cargobay.storage.base import IntegrityError
from cargobay.storage.encrypted import EncryptedStore
from cargobay.storage.filesystem import FilesystemStore
from cargobay.storage.segments import HEADER_SIZE, OVERHEAD, Layout, header
from tests.support.storage import StaticKeys, read_all


def test_header_names_format_version_and_segment_size() -> None:
    assert header(1024 * 1024) == b"CBENC1\x01\x00\x00\x10\x00\x00"
    assert len(header(1)) == HEADER_SIZE


@given(segment=st.integers(OVERHEAD + 1, 4096), size=st.integers(0, 100_000), finished=st.booleans())
def test_plaintext_size_follows_from_ciphertext_size(segment: int, size: int, finished: bool) -> None:
    segments = -(-size // segment)
    layout = Layout(segment, segments, size, finished)
    parsed = Layout.parse(segment, layout.cipher_size, finished)
    assert parsed == layout
    expected = HEADER_SIZE + size + (segments + finished) * OVERHEAD
    assert layout.cipher_size == expected


@given(segment=st.integers(OVERHEAD + 1, 512), cipher_size=st.integers(0, 20_000), finished=st.booleans())
def test_every_ciphertext_size_parses_consistently_or_is_refused(
    segment: int, cipher_size: int, finished: bool
) -> None:
    try:
        layout = Layout.parse(segment, cipher_size, finished)
    except IntegrityError:
        return
    assert layout.cipher_size == cipher_size
    assert layout.segments == -(-layout.size // segment)


@given(
    segment=st.integers(OVERHEAD + 1, 300),
    size=st.integers(0, 3000),
    start=st.integers(0, 3100),
    length=st.integers(0, 3100),
)
def test_plan_covers_the_range_and_the_final_segment_at_the_end(
    segment: int, size: int, start: int, length: int
) -> None:
    layout = Layout(segment, -(-size // segment), size, True)
    end = min(size, start + length)
    plan = layout.plan(start, end)
    covered = [i for i in plan if i < layout.segments]
    if end > start:
        assert covered[0] * segment <= start and end <= (covered[-1] + 1) * segment
        assert covered == list(range(covered[0], covered[-1] + 1))
    else:
        assert covered == []
    assert (layout.segments in plan) == (end >= size or layout.segments - 1 in covered)


sessions = st.lists(
    st.tuples(st.sampled_from(["write", "fail", "unrecorded"]), st.integers(0, 700), st.integers(1, 400)),
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(
    ops=sessions,
    reads=st.lists(st.tuples(st.integers(0, 3000), st.one_of(st.none(), st.integers(0, 3000))), max_size=5),
)
def test_any_writer_sessions_read_back_exactly(
    ops: list[tuple[str, int, int]], reads: list[tuple[int, int | None]]
) -> None:
    asyncio.run(_sessions(ops, reads))


async def _sessions(ops: list[tuple[str, int, int]], reads: list[tuple[int, int | None]]) -> None:
    """Sessions that suspend (recorded), break off, or suspend without their state being recorded."""
    with tempfile.TemporaryDirectory() as root:
        store = EncryptedStore(FilesystemStore(root), StaticKeys(), segment_size=100)
        final = "ns/blobs/ab/ab01"
        expected = b""
        state = None
        for op, amount, chunk in ops:
            data = os.urandom(amount)
            writer = await store.writer(final, state)
            assert writer.size == len(expected)
            for start in range(0, len(data), chunk):
                await writer.write(data[start : start + chunk])
            if op == "write":
                state = await writer.suspend()
                expected += data
            elif op == "unrecorded":
                await writer.suspend()
            await writer.close()
        writer = await store.writer(final, state)
        assert await writer.commit() == len(expected)
        assert await store.stat(final) == len(expected)
        assert await read_all(store.reader(final)) == expected
        for offset, length in reads:
            want = expected[offset:] if length is None else expected[offset : offset + length]
            assert await read_all(store.reader(final, offset, length)) == want
        await store.close()


@pytest.mark.parametrize("segment", [OVERHEAD, 2**31])
def test_segment_size_must_be_sensible(segment: int) -> None:
    with pytest.raises(ValueError):
        EncryptedStore(FilesystemStore(tempfile.mkdtemp()), StaticKeys(), segment_size=segment)
