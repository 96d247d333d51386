"""The malloc settings: applied on glibc, and above the size of the blocks a transfer allocates."""

from __future__ import annotations

import platform

import pytest

from cargobay import allocator
from cargobay.storage import streams


def test_transfer_blocks_come_from_the_heap_and_larger_ones_are_mmapped() -> None:
    # A 1 MiB block plus its AES-GCM tag and the allocator's header stays below the threshold, so
    # blocks are reused instead of mapped and unmapped one by one; argon2's 19 MiB is mmapped.
    assert streams.CHUNK + 4096 < allocator.MMAP_THRESHOLD < 19 * 1024 * 1024


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")
def test_tune_applies_on_glibc() -> None:
    assert allocator.tune() is True
