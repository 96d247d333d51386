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
from tests.support.storage import StaticKeys, chunks_of, read_all


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


operations = st.lists(
    st.one_of(
        st.tuples(st.just("append"), st.integers(0, 700), st.integers(1, 400)),
        st.tuples(st.just("truncate"), st.floats(0, 1), st.just(0)),
    ),
    max_size=8,
)


@settings(max_examples=60, deadline=None)
@given(
    ops=operations,
    reads=st.lists(st.tuples(st.integers(0, 3000), st.one_of(st.none(), st.integers(0, 3000))), max_size=5),
)
def test_any_appends_and_truncates_read_back_exactly(
    ops: list[tuple[str, float, int]], reads: list[tuple[int, int | None]]
) -> None:
    asyncio.run(_appends_and_truncates(ops, reads))


async def _appends_and_truncates(
    ops: list[tuple[str, float, int]], reads: list[tuple[int, int | None]]
) -> None:
    with tempfile.TemporaryDirectory() as root:
        store = EncryptedStore(FilesystemStore(root), StaticKeys(), segment_size=100)
        staged, final = "ns/uploads/ab01", "ns/blobs/ab/ab01"
        expected = b""
        await store.append(staged, chunks_of(b"", 1))
        for op, amount, chunk in ops:
            if op == "append":
                data = os.urandom(int(amount))
                assert await store.append(staged, chunks_of(data, chunk)) == len(expected) + len(data)
                expected += data
            else:
                expected = expected[: int(len(expected) * amount)]
                await store.truncate(staged, len(expected))
            assert await store.staged_size(staged) == len(expected)
            assert await read_all(store.staged_reader(staged)) == expected
        await store.commit(staged, final)
        assert await store.stat(final) == len(expected)
        for offset, length in reads:
            want = expected[offset:] if length is None else expected[offset : offset + length]
            assert await read_all(store.reader(final, offset, length)) == want
        await store.close()


@pytest.mark.parametrize("segment", [OVERHEAD, 2**31])
def test_segment_size_must_be_sensible(segment: int) -> None:
    with pytest.raises(ValueError):
        EncryptedStore(FilesystemStore(tempfile.mkdtemp()), StaticKeys(), segment_size=segment)
