"""What operators see of a running server: Prometheus metrics and one access-log line per request.

Metrics work with ``--workers N``: ``cargobay serve`` points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh
directory before any process imports ``prometheus_client``, every process writes its samples there,
and ``/metrics`` (whichever process answers) adds them up (the library's multiprocess mode).

The facts of a request that only inner layers know (the route template, the registry, who called)
are put in ``RequestFacts`` through a context variable; the access log and the request metrics read
them when the response is done. No header, body or query string is ever logged.
"""

from __future__ import annotations

import bisect
import contextlib
import contextvars
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

from cargobay.periodic import periodically

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"

# -- requests --
REQUESTS = Counter(
    "cargobay_http_requests",
    "HTTP requests answered, by route template, method and status",
    ["route", "method", "status"],
)
DURATION = Histogram(
    "cargobay_http_request_duration_seconds",
    "Time from the request's arrival to the last byte of its response",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
RECEIVED = Counter(
    "cargobay_http_received_bytes", "Request body bytes received, by route template", ["route"]
)
SENT = Counter("cargobay_http_sent_bytes", "Response body bytes sent, by route template", ["route"])
BLOB_REDIRECTED = Counter(
    "cargobay_blob_redirected_bytes",
    "Blob bytes (whole, or the range asked for) of GETs answered 307 to the object store, which sends them",
)
UPLOADS_IN_FLIGHT = Gauge(
    "cargobay_uploads_in_flight",
    "Upload requests (PATCH/PUT/POST with a body) streaming right now",
    multiprocess_mode="livesum",
)
# -- the token service --
TOKEN_REQUESTS = Counter(
    "cargobay_token_requests",
    "Requests to /auth/token by outcome: a JWT issued, or credentials refused",
    ["outcome"],
)
TOKEN_SCOPES = Counter(
    "cargobay_token_scopes",
    "Scopes asked of /auth/token, granted or denied by the credentials' rights",
    ["outcome"],
)
# -- jobs --
JOB_RUNS = Counter("cargobay_job_runs", "Job attempts finished, by kind and outcome", ["kind", "outcome"])
# -- the database --
DB_POOL_IN_USE = Gauge(
    "cargobay_db_connections_in_use",
    "Database connections checked out of the pools",
    multiprocess_mode="livesum",
)
DB_POOL_SIZE = Gauge(
    "cargobay_db_pool_size", "Database connections each process may hold", multiprocess_mode="max"
)
DB_UNAVAILABLE = Counter(
    "cargobay_db_unavailable", "Requests answered 503 because the database could not be reached"
)
STORAGE_FULL = Counter("cargobay_storage_full", "Writes refused because the disk or the database was full")


@contextlib.contextmanager
def upload_in_flight() -> Iterator[None]:
    UPLOADS_IN_FLIGHT.inc()
    try:
        yield
    finally:
        UPLOADS_IN_FLIGHT.dec()


@dataclass
class RequestFacts:
    """Filled in by the layer that knows them; read when the response is done."""

    route: str = "other"
    registry: str | None = None
    principal: str | None = None  # "user:<email>", "token:<name>", "jwt:<subject>"


_facts: contextvars.ContextVar[RequestFacts | None] = contextvars.ContextVar("cargobay_request", default=None)


def facts() -> RequestFacts:
    """The current request's facts (a throw-away object outside a request)."""
    current = _facts.get()
    return current if current is not None else RequestFacts()


def begin_request() -> RequestFacts:
    current = RequestFacts()
    _facts.set(current)
    return current


@dataclass
class Measured:
    """One request as the access log and the metrics see it."""

    method: str
    path: str
    client: str | None
    started: float = field(default_factory=time.perf_counter)
    status: int = 0
    received: int = 0
    sent: int = 0

    def finish(self, request: RequestFacts) -> float:
        seconds = time.perf_counter() - self.started
        key = (request.route, self.method, self.status)
        tally = _TALLIES.get(key)
        if tally is None:
            tally = _TALLIES[key] = _Tally()
        tally.add(seconds, self.received, self.sent)
        return seconds


FLUSH_SECONDS = 1.0  # request metrics reach /metrics at most this late (the scraped process's at once)
_BOUNDS = DURATION._upper_bounds  # the histogram's buckets, +Inf last


class _Tally:
    """The requests of one (route, method, status) since the last flush, in plain numbers: a request
    costs a few additions instead of four writes into the multiprocess files (~6% of a manifest GET)."""

    __slots__ = ("buckets", "count", "received", "seconds", "sent")

    def __init__(self) -> None:
        self.count = 0
        self.seconds = 0.0
        self.buckets = [0] * len(_BOUNDS)
        self.received = 0
        self.sent = 0

    def add(self, seconds: float, received: int, sent: int) -> None:
        self.count += 1
        self.seconds += seconds
        self.buckets[bisect.bisect_left(_BOUNDS, seconds)] += 1
        self.received += received
        self.sent += sent


_TALLIES: dict[tuple[str, str, int], _Tally] = {}


def flush_request_metrics() -> None:
    """Write what requests tallied into the metrics (the multiprocess files under ``--workers``)."""
    if not _TALLIES:
        return
    tallies = list(_TALLIES.items())
    _TALLIES.clear()
    for (route, method, status), tally in tallies:
        REQUESTS.labels(route, method, str(status)).inc(tally.count)
        duration = DURATION.labels(route, method)
        # Histogram.observe per request, added up: the sum once, each bucket's count once.
        duration._sum.inc(tally.seconds)
        for bucket, count in zip(duration._buckets, tally.buckets, strict=True):
            if count:
                bucket.inc(count)
        if tally.received:
            RECEIVED.labels(route).inc(tally.received)
        if tally.sent:
            SENT.labels(route).inc(tally.sent)


def request_metrics_flushed() -> contextlib.AbstractAsyncContextManager[None]:
    """Flush the request metrics every ``FLUSH_SECONDS`` while serving, and once at the end."""

    async def flush() -> None:
        flush_request_metrics()

    return periodically(FLUSH_SECONDS, flush)


# -- /metrics --------------------------------------------------------------------------------


class QueryCollector(Collector):
    """Gauges read from the database at scrape time (queue depth, open upload sessions)."""

    def __init__(self, read: Callable[[], Iterable[Metric]]) -> None:
        self._read = read

    def collect(self) -> Iterable[Metric]:
        try:
            yield from self._read()
        except Exception:
            up = GaugeMetricFamily(
                "cargobay_metrics_database_up", "Whether the scrape could read the database"
            )
            up.add_metric([], 0)
            yield up


def forget_process(pid: int) -> None:
    """Drop the live gauges of a child process that ended (its counters stay in the sums)."""
    if os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]


def exposition(extra: Iterable[Collector] = ()) -> tuple[bytes, str]:
    """The metrics of every process of this server (or of this one, without multiprocess mode)."""
    flush_request_metrics()
    registry = CollectorRegistry()
    if os.environ.get(MULTIPROCESS_ENV):
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    extra = list(extra)
    for collector in extra:
        registry.register(collector)
    try:
        return generate_latest(registry), CONTENT_TYPE_LATEST
    finally:
        for collector in extra:
            registry.unregister(collector)


def gauge(
    name: str, documentation: str, labels: list[str], rows: Iterable[tuple[Any, ...]]
) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, documentation, labels=labels)
    for *values, count in rows:
        family.add_metric([str(v) for v in values], float(count))
    return family
