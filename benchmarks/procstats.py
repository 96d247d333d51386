"""Memory and CPU of a server's process tree, read from /proc (Linux only, no dependencies)."""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (via /proc/<pid>/task/<tid>/children)."""
    found = [pid]
    index = 0
    while index < len(found):
        current = found[index]
        index += 1
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for tid in tasks:
            try:
                children = Path(f"/proc/{current}/task/{tid}/children").read_text().split()
            except OSError:
                continue
            found.extend(int(c) for c in children if int(c) not in found)
    return found


def _status_kib(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kib(pid: int) -> int:
    """Resident set size now (one read of /proc/<pid>/statm: cheap enough for a 20 ms poll)."""
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * _PAGE // 1024
    except (OSError, IndexError, ValueError):
        return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of the whole tree (live processes only)."""
    total = 0
    for p in descendants(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            continue
    return total / _TICKS


@dataclass
class MemoryPeak:
    peak_tree_rss_mib: float  # highest sampled sum of VmRSS over the tree
    max_process_hwm_mib: float  # highest VmHWM (kernel-tracked peak) of one process in the tree
    baseline_tree_rss_mib: float  # tree RSS when sampling started (idle server)
    processes: int

    @property
    def peak_mib(self) -> float:
        return max(self.peak_tree_rss_mib, self.max_process_hwm_mib)


class RssSampler:
    """Samples the tree's RSS every ``interval`` seconds in a thread; ``stop()`` returns the peak.

    VmHWM is exact per process but also covers start-up; the sampled tree sum catches the
    sum over workers. Both are reported; the peak is the larger one.
    """

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self._stop = threading.Event()
        self._pids = descendants(pid)
        self.baseline = sum(rss_kib(p) for p in self._pids)
        self._peak = self.baseline
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        rounds = 0
        while not self._stop.wait(self.interval):
            rounds += 1
            if rounds % 50 == 0:
                self._pids = descendants(self.pid)
            self._peak = max(self._peak, sum(rss_kib(p) for p in self._pids))

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def result(self) -> MemoryPeak:
        pids = descendants(self.pid)
        hwm = max((_status_kib(p, "VmHWM") for p in pids), default=0)
        return MemoryPeak(self._peak / 1024, hwm / 1024, self.baseline / 1024, len(pids))
