"""The benchmark's latency probe: counts, quantiles, and a refusal of anything but 200."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from benchmarks.suites import probe_latency


def serve(status: int) -> Iterator[str]:
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
    assert all(value in (None, "Bearer t") for value in seen)


@pytest.fixture
def ok_url() -> Iterator[str]:
    yield from serve(200)


@pytest.fixture
def denied_url() -> Iterator[str]:
    yield from serve(401)


def test_a_fixed_number_of_requests_is_summarised(ok_url: str) -> None:
    sample = probe_latency(ok_url, "Bearer t", lambda: False, requests=20, gap=0)
    assert sample.count == 20
    assert 0 < sample.p50 <= sample.p99 <= sample.max


def test_the_probe_stops_when_told(ok_url: str) -> None:
    calls = 0

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls > 3

    assert probe_latency(ok_url, None, stop, gap=0).count == 3


def test_a_refused_request_fails_the_probe(denied_url: str) -> None:
    with pytest.raises(RuntimeError, match="401"):
        probe_latency(denied_url, None, lambda: False, requests=3, gap=0)


def test_a_probe_that_made_no_request_is_an_error(ok_url: str) -> None:
    with pytest.raises(RuntimeError, match="no request"):
        probe_latency(ok_url, None, lambda: True)
