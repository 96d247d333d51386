"""BufferPool: blocks are recycled only once nobody can see them any more."""

from __future__ import annotations

from cargobay.storage.streams import BufferPool


def test_a_dropped_block_is_recycled() -> None:
    pool = BufferPool(16)
    block = pool.take(16)
    buffer = id(block.obj)  # holding the buffer itself would keep it from being recycled
    del block
    assert id(pool.take(16).obj) == buffer


def test_a_block_still_held_is_never_handed_out_again() -> None:
    pool = BufferPool(16)
    held = pool.take(16)
    held[:] = b"x" * 16
    other = pool.take(16)
    other[:] = b"y" * 16
    assert other.obj is not held.obj
    assert bytes(held) == b"x" * 16


def test_a_slice_of_a_block_keeps_it_from_being_recycled() -> None:
    pool = BufferPool(16)
    block = pool.take(16)
    block[:] = b"0123456789abcdef"
    piece = block[4:8]
    del block
    pool.take(16)[:] = b"z" * 16
    assert bytes(piece) == b"4567"


def test_a_buffer_taken_out_of_its_view_keeps_it_from_being_recycled() -> None:
    pool = BufferPool(16)
    block = pool.take(16)
    buffer = block.obj
    block.release()
    del block
    assert pool.take(16).obj is not buffer


def test_short_blocks_get_buffers_of_their_own_size() -> None:
    pool = BufferPool(16)
    short = pool.take(5)
    assert len(short) == 5
    assert len(short.obj) == 5  # type: ignore[arg-type]
    assert len(pool.take(16)) == 16


def test_the_pool_keeps_a_bounded_number_of_buffers() -> None:
    pool = BufferPool(16, keep=2)
    held = [pool.take(16) for _ in range(5)]
    kept = {id(view.obj) for view in held[:2]}
    del held
    recycled = {id(pool.take(16).obj) for _ in range(5)}  # each view is dropped at once
    assert recycled <= kept
