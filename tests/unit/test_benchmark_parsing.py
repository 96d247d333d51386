"""Parsers of the benchmark harness: wrk's report and human sizes."""

from __future__ import annotations

import pytest
from benchmarks.cli import parse_size
from benchmarks.loadgen import parse

WRK_OUTPUT = """Running 20s test @ http://127.0.0.1:40000/v2/bench/small/manifests/latest
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    29.76ms   12.00ms 120.00ms   80.00%
    Req/Sec     1.08k   100.00     1.20k    70.00%
  Latency Distribution
     50%   29.76ms
     75%   35.00ms
     90%  840.00us
     99%    1.20s
  21404 requests in 20.01s, 10.00MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:   1069.66
Transfer/sec:    511.00KB
"""


def test_wrk_report_is_parsed_with_percentiles_in_milliseconds() -> None:
    result = parse(WRK_OUTPUT)
    assert result.requests == 21404
    assert result.requests_per_s == pytest.approx(1069.66)
    assert result.p50_ms == pytest.approx(29.76)
    assert result.p90_ms == pytest.approx(0.84)
    assert result.p99_ms == pytest.approx(1200)
    assert result.non_2xx == 3
    assert result.socket_errors == 3
    assert result.seconds == pytest.approx(20.01)


@pytest.mark.parametrize(
    ("text", "size"),
    [("1GiB", 1024**3), ("64MiB", 64 * 1024**2), ("2MB", 2_000_000), ("12345", 12345), ("1.5KiB", 1536)],
)
def test_sizes_accept_binary_and_decimal_units(text: str, size: int) -> None:
    assert parse_size(text) == size
