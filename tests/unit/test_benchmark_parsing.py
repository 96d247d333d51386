"""Parsers of the benchmark harness: wrk's report, human sizes, the scaling table."""

from __future__ import annotations

import argparse

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


def test_scaling_is_a_section_of_the_benchmark_cli_but_not_a_default_one() -> None:
    from benchmarks.cli import build_parser

    assert build_parser().parse_args(["--only", "scaling"]).only == {"scaling"}
    assert "scaling" not in build_parser().parse_args([]).only


def test_scaling_sizes_and_sections_parse() -> None:
    from benchmarks.scaling import parse_sections, parse_sizes

    assert parse_sizes("50000,100,1_000") == [100, 1000, 50000]
    assert parse_sections("flat,login") == ("login", "flat")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_sizes("1")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_sections("login,nope")


def test_scaling_table_shows_each_size_and_the_growth_ratio() -> None:
    from benchmarks.scaling import Measurement, Report, table

    def sample(rows: int, ms: float, status: str = "200") -> Measurement:
        return Measurement("login", "GET /v2/", rows, [ms, ms * 2], {status: 2}, ms, 1, [200])

    report = Report({}, [sample(100, 2.0), sample(50_000, 20.0, "401")])
    text = table(report)
    assert "N=100" in text and "N=50,000" in text and "10.00x" in text
    assert "HTTP status" in text and "401" in text
    (ratio,) = report.ratios()
    assert ratio["p50"] == 10.0 and ratio["from_rows"] == 100 and ratio["to_rows"] == 50_000
