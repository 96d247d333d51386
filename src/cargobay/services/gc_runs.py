"""Garbage collection runs as reports, views and progress: what a run freed, where it stands and how
long it has left (written to its ``gc_runs`` row about once a second), and the Prometheus metrics."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from cargobay import gc_metrics
from cargobay.db.engine import Database
from cargobay.db.models import GcRun
from cargobay.db.queries import gc_runs
from cargobay.db.types import utcnow
from cargobay.logs import get_logger

log = get_logger("cargobay.gc")

PROGRESS_EVERY = 1.0  # seconds between writes of a run's progress


@dataclass
class RunReport:
    """What a run reviewed and freed (for a dry run: would free)."""

    run_id: int | None
    registry_id: str | None
    registry: str  # name, or "-" for the sweep of namespaces of deleted registries
    dry_run: bool
    grace_seconds: int
    untagged_manifests: str
    candidates: int = 0
    blobs_freed: int = 0
    bytes_freed: int = 0
    manifests_deleted: int = 0
    uploads_expired: int = 0
    objects_deleted: int = 0
    orphans_found: int = 0
    orphans_deleted: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def blobs_per_second(self) -> float:
        return self.blobs_freed / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Progress:
    phase: str
    done: int
    total: int
    eta_seconds: float | None
    report: RunReport


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, slots=True)
class RunView:
    """A run as the management API and the CLI show it."""

    id: int
    registry_id: str | None
    trigger: str
    requested_by: str | None
    dry_run: bool
    grace_seconds: int
    untagged_manifests: str
    state: str
    phase: str | None
    done: int
    total: int
    eta_seconds: float | None
    candidates: int
    blobs_freed: int
    bytes_freed: int
    manifests_deleted: int
    uploads_expired: int
    objects_deleted: int
    orphans_found: int
    orphans_deleted: int
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


def run_view(run: GcRun) -> RunView:
    return RunView(
        id=run.id,
        registry_id=run.registry_id,
        trigger=run.trigger,
        requested_by=run.requested_by,
        dry_run=bool(run.dry_run),
        grace_seconds=int(run.grace_seconds),
        untagged_manifests=run.untagged_manifests,
        state=run.state,
        phase=run.phase,
        done=int(run.done or 0),
        total=int(run.total or 0),
        eta_seconds=run.eta_seconds,
        candidates=int(run.candidates or 0),
        blobs_freed=int(run.blobs_freed or 0),
        bytes_freed=int(run.bytes_freed or 0),
        manifests_deleted=int(run.manifests_deleted or 0),
        uploads_expired=int(run.uploads_expired or 0),
        objects_deleted=int(run.objects_deleted or 0),
        orphans_found=int(run.orphans_found or 0),
        orphans_deleted=int(run.orphans_deleted or 0),
        error=run.error,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
    )


def observe(report: RunReport, outcome: str) -> None:
    gc_metrics.RUNS.labels(outcome).inc()
    gc_metrics.RUN_SECONDS.labels(outcome).observe(report.seconds)
    if report.dry_run:
        return
    label = report.registry_id or "-"  # ids, not names: /metrics has no login
    gc_metrics.CANDIDATES.labels(label).inc(report.candidates)
    gc_metrics.BLOBS_FREED.labels(label).inc(report.blobs_freed)
    gc_metrics.BYTES_FREED.labels(label).inc(report.bytes_freed)
    gc_metrics.MANIFESTS_DELETED.labels(label).inc(report.manifests_deleted)
    gc_metrics.ORPHANS_DELETED.labels(label).inc(report.orphans_deleted)


@dataclass
class Tracker:
    """Counts progress, estimates the time left, and writes both to the run's row now and then."""

    db: Database
    report: RunReport
    on_progress: ProgressCallback | None
    total: int = 0
    done: int = 0
    current: str = "starting"
    started: float = field(default_factory=time.monotonic)
    written: float = field(default_factory=time.monotonic)  # _start_run wrote the row just now

    @property
    def eta(self) -> float | None:
        elapsed = time.monotonic() - self.started
        if self.done <= 0 or elapsed <= 0:
            return None
        return max(0.0, (self.total - self.done) * elapsed / self.done)

    async def phase(self, name: str, add_total: int = 0, expect: int | None = None) -> None:
        """Enter a phase; ``expect``: the work left from here on, as now known (replaces the
        estimate made at the start)."""
        self.current = name
        self.total = self.done + expect if expect is not None else self.total + add_total
        await self._publish()

    async def advance(self, count: int) -> None:
        self.done += count
        self.total = max(self.total, self.done)
        await self._publish()

    async def _publish(self, force: bool = False) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(self.current, self.done, self.total, self.eta, self.report))
        now = time.monotonic()
        if self.report.run_id is None or (not force and now - self.written < PROGRESS_EVERY):
            return
        self.written = now
        values = {**self._values(), "heartbeat_at": utcnow()}
        run_id = self.report.run_id
        await self.db.write(lambda s: gc_runs.update_run(s, run_id, **values))

    def _values(self) -> dict[str, Any]:
        r = self.report
        return {
            "phase": self.current,
            "done": self.done,
            "total": self.total,
            "eta_seconds": self.eta,
            "candidates": r.candidates,
            "blobs_freed": r.blobs_freed,
            "bytes_freed": r.bytes_freed,
            "manifests_deleted": r.manifests_deleted,
            "uploads_expired": r.uploads_expired,
            "objects_deleted": r.objects_deleted,
            "orphans_found": r.orphans_found,
            "orphans_deleted": r.orphans_deleted,
        }

    async def close(self, state: str, error: str | None) -> None:
        if self.report.run_id is None:
            return
        values = self._values()
        values.update(state=state, error=error, eta_seconds=None, finished_at=utcnow(), heartbeat_at=utcnow())
        if state == "succeeded":
            self.total = self.done = max(self.done, self.total)
            values.update(phase=None, done=self.done, total=self.total)
            if self.on_progress is not None:
                self.on_progress(Progress("done", self.done, self.total, 0.0, self.report))
        try:
            run_id = self.report.run_id
            await asyncio.shield(self.db.write(lambda s: gc_runs.update_run(s, run_id, **values)))
        except Exception:
            log.exception("gc_run_record_failed", run=self.report.run_id)
