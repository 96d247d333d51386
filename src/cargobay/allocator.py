"""glibc malloc settings that keep a long-running server's memory flat.

Left alone, glibc raises its mmap threshold after the first large block is freed, so later large
blocks (argon2's 19 MiB, 1 MiB encryption segments, request bodies) come from per-thread arenas and
stay there after they are freed, and a process with many threads keeps one arena per thread: RSS
ratchets up under load and never comes down. A fixed threshold (large blocks always mmapped, so
given back when freed) and a few arenas keep it flat; measured with ``python -m benchmarks.soak``.
"""

from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 512 * 1024
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
