"""Prometheus metrics of garbage collection (the default registry, so ``/metrics`` exposes them).

Labelled by registry name (``-`` for the sweep of namespaces whose registry is gone). Dry runs
count nothing here.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

CANDIDATES = Counter(
    "cargobay_gc_candidates",
    "Blobs and manifests garbage collection reviewed (due: their grace period had passed)",
    ["registry"],
)
BLOBS_FREED = Counter("cargobay_gc_blobs_freed", "Blobs deleted by garbage collection", ["registry"])
BYTES_FREED = Counter("cargobay_gc_bytes_freed", "Bytes of blobs deleted by garbage collection", ["registry"])
MANIFESTS_DELETED = Counter(
    "cargobay_gc_manifests_deleted",
    "Untagged, unreferenced manifests deleted by garbage collection",
    ["registry"],
)
ORPHANS_DELETED = Counter(
    "cargobay_gc_orphans_deleted", "Stored objects no row named, deleted by the sweep", ["registry"]
)
RUNS = Counter("cargobay_gc_runs", "Garbage collection runs by outcome", ["outcome"])
RUN_SECONDS = Histogram(
    "cargobay_gc_run_duration_seconds",
    "Wall time of garbage collection runs",
    ["outcome"],
    buckets=(0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600),
)
LAST_RUN = Gauge(
    "cargobay_gc_last_run_timestamp_seconds",
    "When the last garbage collection run of the registry finished (Unix time)",
    ["registry"],
)
LAST_RUN_SUCCESS = Gauge(
    "cargobay_gc_last_run_success", "1 if the last run of the registry succeeded, else 0", ["registry"]
)
