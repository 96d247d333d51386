"""The resumable digest an upload keeps in its row: equal to hashlib's, across saves and restores."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cargobay.domain.resumable_hash import ResumableHash


@settings(max_examples=80, deadline=None)
@given(
    algorithm=st.sampled_from(["sha256", "sha512"]),
    pieces=st.lists(st.binary(max_size=300), max_size=8),
    cuts=st.sets(st.integers(0, 8)),
)
def test_a_hash_saved_and_restored_anywhere_matches_hashlib(
    algorithm: str, pieces: list[bytes], cuts: set[int]
) -> None:
    running = ResumableHash(algorithm)
    for i, piece in enumerate(pieces):
        if i in cuts:
            running = ResumableHash.restore(running.state())
        running.update(piece if i % 2 else memoryview(bytearray(piece)))
    assert running.hexdigest() == hashlib.new(algorithm, b"".join(pieces)).hexdigest()


def test_hexdigest_leaves_the_hash_running() -> None:
    running = ResumableHash()
    running.update(b"abc")
    running.hexdigest()
    running.update(b"def")
    assert running.hexdigest() == hashlib.sha256(b"abcdef").hexdigest()
    assert running.copy().hexdigest() == running.hexdigest()


def test_large_and_read_only_views_hash_alike() -> None:
    data = bytes(range(256)) * 40_000
    running = ResumableHash()
    running.update(memoryview(data)[1:])
    assert running.hexdigest() == hashlib.sha256(data[1:]).hexdigest()


@pytest.mark.parametrize(
    "saved",
    [
        b"",
        b"CBH1sha256",
        b"CBH1md5\0" + bytes(112),
        b"CBH1sha256\0" + bytes(111),
        b"XXXXsha256\0" + bytes(112),
    ],
)
def test_anything_but_a_saved_state_is_refused(saved: bytes) -> None:
    with pytest.raises(ValueError):
        ResumableHash.restore(saved)


def test_a_state_whose_buffer_count_overflows_is_refused() -> None:
    state = bytearray(ResumableHash().state())
    state[-8] = 200  # num, just before md_len
    with pytest.raises(ValueError, match="damaged"):
        ResumableHash.restore(bytes(state))
