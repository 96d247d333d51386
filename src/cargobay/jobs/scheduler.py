"""Scheduled jobs: each period of each kind, and each registry's weekly window, is enqueued once,
however many schedulers run.

* Fixed periods (``Periodic``): time is cut into buckets of ``every`` seconds since the epoch; the
  job for the current bucket gets the dedupe key ``{kind}@{bucket}`` (kept on the finished row, see
  ``queue.enqueue(once=True)``), so any number of processes may tick: the first insert wins and the
  rest find the key taken. A scheduler that was down for several periods enqueues only the current
  one. Jobs of one periodic kind share a concurrency key, so two of them never run at once.
* Weekly windows (``Weekly``): each registry with a GC schedule (days + a UTC time) gets a job at
  each window, keyed ``{kind}:{registry}@{window}``. The registry row records the next window; a
  window that passed while no scheduler ran (a server that was down) is enqueued at the next start,
  once, and the windows missed before it are coalesced into it. Windows before the schedule was set
  do not count. Jobs of one registry share a concurrency key.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargobay import outages
from cargobay.db.engine import Database
from cargobay.db.models import Job
from cargobay.db.queries import registries
from cargobay.db.types import utcnow
from cargobay.domain.schedule import WeeklySchedule
from cargobay.jobs.queue import enqueue
from cargobay.logs import get_logger

log = get_logger("cargobay.jobs.scheduler")


@dataclass(frozen=True, slots=True)
class Periodic:
    kind: str
    every: float  # seconds
    payload: dict[str, Any] = field(default_factory=dict)
    max_attempts: int = 3

    def bucket(self, now: datetime) -> tuple[str, datetime]:
        """The dedupe key and start time of the period that ``now`` falls in."""
        index = math.floor(now.timestamp() / self.every)
        return f"{self.kind}@{index}", datetime.fromtimestamp(index * self.every, UTC)


@dataclass(frozen=True, slots=True)
class Weekly:
    """A job of ``kind`` at every window of every registry's weekly GC schedule."""

    kind: str
    max_attempts: int = 3

    def key(self, registry_id: str, window: datetime) -> str:
        return f"{self.kind}:{registry_id}@{window.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


NO_WINDOW = datetime(9999, 1, 1, tzinfo=UTC)  # the next window of a schedule that has no day


class _Moved(Exception):
    """The registry's next window changed under a scheduler working it out."""


class Scheduler:
    def __init__(
        self,
        db: Database,
        periodic: Sequence[Periodic],
        tick: float | None = None,
        weekly: Sequence[Weekly] = (),
    ) -> None:
        self.db = db
        self.periodic = list(periodic)
        self.weekly = list(weekly)
        self._quiet_until = 0.0
        shortest = min((p.every for p in self.periodic), default=60.0)
        # Tick often enough that no period starts long before its job is enqueued.
        self.tick_interval = tick if tick is not None else min(10.0, max(0.2, shortest / 4))

    def tick(self, now: datetime | None = None) -> list[int]:
        """Enqueue what is due: the current period's job of every kind that lacks one, and the jobs
        of weekly windows that have come; returns the new job ids."""
        now = now or utcnow()
        created = self._tick_periodic(now)
        if self.weekly:
            created += self._tick_weekly(now)
        return created

    def _tick_periodic(self, now: datetime) -> list[int]:
        due = {key: (p, start) for p in self.periodic for key, start in [p.bucket(now)]}

        def taken(session: Session) -> set[str]:
            return set(session.scalars(select(Job.dedupe_key).where(Job.dedupe_key.in_(list(due)))))

        present = self.db.read_sync(taken)
        missing = [key for key in due if key not in present]
        if not missing:  # the common case: no write transaction at all
            return []

        def work(session: Session) -> list[int]:
            created = []
            for key in missing:
                periodic, start = due[key]
                result = enqueue(
                    session,
                    periodic.kind,
                    periodic.payload,
                    run_at=start,
                    dedupe_key=key,
                    once=True,
                    concurrency_key=periodic.kind,
                    max_attempts=periodic.max_attempts,
                    now=now,
                )
                if result.created:
                    created.append(result.id)
            return created

        created = self.db.write_sync(work)
        if created:
            log.debug("periodic_jobs_enqueued", count=len(created))
        return created

    def _tick_weekly(self, now: datetime) -> list[int]:
        due = self.db.read_sync(registries.schedules_due, now)  # indexed on the next window
        created: list[int] = []
        for row in due:
            try:
                created += self.db.write_sync(self._window, row, now)
            except _Moved:
                continue  # another scheduler, or a new schedule, got there first
        if created:
            log.info("scheduled_windows_enqueued", count=len(created))
        return created

    def _window(self, session: Session, row: registries.ScheduleRow, now: datetime) -> list[int]:
        schedule = WeeklySchedule(row.days, row.time)
        window = row.next_window_at
        if window is None:  # a new schedule: its first window after it was set
            window = schedule.next_window(row.since or now) or NO_WINDOW
        created: list[int] = []
        if window <= now:
            for weekly in self.weekly:
                result = enqueue(
                    session,
                    weekly.kind,
                    {"registry_id": row.registry_id, "window": window.isoformat()},
                    run_at=window,
                    dedupe_key=weekly.key(row.registry_id, window),
                    once=True,
                    concurrency_key=f"{weekly.kind}:{row.registry_id}",
                    max_attempts=weekly.max_attempts,
                    now=now,
                )
                if result.created:
                    created.append(result.id)
            window = schedule.next_window(now) or NO_WINDOW
        if not registries.move_next_window(session, row.registry_id, row.next_window_at, window, row.time):
            raise _Moved  # roll the enqueues back with it
        return created

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set; a failing tick is logged and retried at the next one."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.tick)
            except Exception as exc:
                if outages.classify(exc) is None:
                    log.exception("scheduler_tick_failed")
                elif time.monotonic() >= self._quiet_until:  # an outage: one line per 30 s
                    self._quiet_until = time.monotonic() + 30
                    log.warning("scheduler_tick_failed", error=f"{type(exc).__name__}: {str(exc)[:200]}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick_interval)
