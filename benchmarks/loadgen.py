"""Manifest GET load with ``wrk`` (Debian package, installed by ``make peers``)."""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


@dataclass(frozen=True)
class LoadResult:
    requests_per_s: float
    requests: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    non_2xx: int
    socket_errors: int
    seconds: float


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if m is None:
        raise ValueError(f"unparsable wrk latency {text!r}")
    return float(m[1]) * _UNITS[m[2]]


def parse(output: str) -> LoadResult:
    percentiles = {int(m[1]): _ms(m[2]) for m in re.finditer(r"^\s+(\d+)%\s+(\S+)\s*$", output, re.MULTILINE)}
    total = re.search(r"^\s*(\d+) requests in ([\d.]+)(ms|s|m)", output, re.MULTILINE)
    rate = re.search(r"^Requests/sec:\s+([\d.]+)", output, re.MULTILINE)
    if total is None or rate is None or 50 not in percentiles:
        raise RuntimeError(f"unexpected wrk output:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return LoadResult(
        requests_per_s=float(rate[1]),
        requests=int(total[1]),
        p50_ms=percentiles[50],
        p90_ms=percentiles.get(90, 0.0),
        p99_ms=percentiles.get(99, 0.0),
        non_2xx=int(non_2xx[1]) if non_2xx else 0,
        socket_errors=sum(int(g) for g in errors.groups()) if errors else 0,
        seconds=_ms(total[2] + total[3]) / 1e3,
    )


def wrk_binary() -> str:
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk not found (Debian package `wrk`; run `make peers`)")
    return found


def run(
    url: str, headers: dict[str, str], seconds: float, connections: int = 32, threads: int = 1
) -> LoadResult:
    """``connections`` keep-alive connections for ``seconds``. One wrk thread: on a 2-core box
    every core wrk takes is one the server does not get (wrk at ~1 core is far above what a
    Python server answers, and the same for both servers)."""
    args = [wrk_binary(), f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    done = subprocess.run([*args, url], capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stderr.strip()}")
    return parse(done.stdout)
