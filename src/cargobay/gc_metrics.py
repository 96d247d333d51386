"""Prometheus metrics of garbage collection counted by the process that runs it (``/metrics`` adds
up every serving process; see ``observability``). Labelled by registry id, never its name (``/metrics``
has no login; ``-`` for the sweep of namespaces whose registry is gone); dry runs count nothing here.

What the database knows is read at scrape time instead (``gc_gauges``): the last run of each
registry, whichever process ran it (a ``cargobay gc`` too), and the review queues' depth.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.orm import Session

from cargobay.db.queries import gc_runs

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


def gc_gauges(session: Session) -> list[GaugeMetricFamily]:
    """Scrape-time gauges: each registry's last run (when, and whether it succeeded), queue depths."""
    runs = gc_runs.last_runs(session)
    finished = GaugeMetricFamily(
        "cargobay_gc_last_run_timestamp_seconds",
        "When the registry's last garbage collection run finished (Unix time)",
        labels=["registry"],
    )
    success = GaugeMetricFamily(
        "cargobay_gc_last_run_success", "1 if the registry's last run succeeded, else 0", labels=["registry"]
    )
    for registry_id, state, at in runs:
        finished.add_metric([registry_id], at.timestamp())
        success.add_metric([registry_id], 1.0 if state == "succeeded" else 0.0)
    queues = GaugeMetricFamily(
        "cargobay_gc_queue_rows", "Rows in the garbage collection queues", labels=["queue"]
    )
    for queue, count in gc_runs.queue_depths(session):
        queues.add_metric([queue], float(count))
    return [finished, success, queues]
