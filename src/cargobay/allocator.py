"""glibc malloc settings that keep a long-running server's memory flat without slowing transfers.

Left alone, glibc raises its mmap threshold after the first large block is freed, so later large
blocks (argon2's 19 MiB, request bodies) come from per-thread arenas and stay there after they are
freed, and a process with many threads keeps one arena per thread: RSS ratchets up under load and
never comes down. A fixed threshold (larger blocks always mmapped, so given back when freed) and a
few arenas keep it flat; measured with ``python -m benchmarks.soak``.

The threshold sits above the 1 MiB blocks that every push and pull allocates several of (the
re-chunked body, each sealed or opened encryption segment): below it, each such block was a fresh
mmap, paged in and zeroed by the kernel and unmapped again, and joining a block ran at ~0.85 GB/s
instead of ~30 GB/s; the server's CPU per GiB fell from 3.95 to 3.40 s for a push and from 1.26 to
0.65 s for a pull (``python -m benchmarks --only push,pull``) with the same peak RSS. Freed blocks of
that size are reused by the next one from the arena's free lists.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 2 * 1024 * 1024
ARENAS = 4


def tune() -> bool:
    """Apply the settings to this process; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_ARENA_MAX, ARENAS))
