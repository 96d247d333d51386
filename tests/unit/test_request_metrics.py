"""Request metrics are tallied in memory and written in one go: what reaches /metrics is exactly
what writing every request into the histogram and counters would have given."""

from __future__ import annotations

import re

from prometheus_client import generate_latest

from cargobay import observability


def _samples(route: str) -> dict[str, float]:
    text = generate_latest().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("cargobay_http_") and f'route="{route}"' in line:
            name, _, value = line.rpartition(" ")
            key = re.sub(r'route="[^"]*"', "", name).replace(",,", ",").replace("{,", "{").replace(",}", "}")
            found[key] = float(value)
    return found


def test_tallied_requests_reach_the_metrics_when_flushed() -> None:
    route = "/test/tallied"
    durations = [0.0005, 0.0009, 0.0011, 0.004, 0.3, 0.3, 7.0, 1000.0]
    for seconds in durations:
        measured = observability.Measured("GET", "/x", None, status=200, received=3, sent=10)
        measured.started -= seconds  # as if the request had taken that long
        measured.finish(observability.RequestFacts(route=route))
    observability.Measured("PUT", "/x", None, status=201, received=100).finish(
        observability.RequestFacts(route=route)
    )
    assert _samples(route) == {}  # nothing written yet: one write per series per flush

    observability.flush_request_metrics()
    samples = _samples(route)
    assert samples['cargobay_http_requests_total{method="GET",status="200"}'] == 8
    assert samples['cargobay_http_requests_total{method="PUT",status="201"}'] == 1
    assert samples["cargobay_http_received_bytes_total{}"] == 8 * 3 + 100
    assert samples["cargobay_http_sent_bytes_total{}"] == 80
    assert samples['cargobay_http_request_duration_seconds_count{method="GET"}'] == 8
    assert abs(samples['cargobay_http_request_duration_seconds_sum{method="GET"}'] - sum(durations)) < 0.01
    cumulative = {
        "0.001": 2,
        "0.0025": 3,
        "0.005": 4,
        "0.25": 4,
        "0.5": 6,
        "5.0": 6,
        "10.0": 7,
        "300.0": 7,
        "+Inf": 8,
    }
    for le, count in cumulative.items():
        assert samples[f'cargobay_http_request_duration_seconds_bucket{{le="{le}",method="GET"}}'] == count

    observability.flush_request_metrics()  # nothing new: nothing added twice
    assert _samples(route) == samples
