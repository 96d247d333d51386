"""Periodic jobs: each period of each kind is enqueued once, however many schedulers run.

Time is cut into buckets of ``every`` seconds since the epoch; the job for the current bucket gets
the dedupe key ``{kind}@{bucket}`` (kept on the finished row, see ``queue.enqueue(once=True)``), so
any number of processes may tick: the first insert wins and the rest find the key taken. A scheduler
that was down for several periods enqueues only the current one.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargobay.db.engine import Database
from cargobay.db.models import Job
from cargobay.db.types import utcnow
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


class Scheduler:
    def __init__(self, db: Database, periodic: Sequence[Periodic], tick: float | None = None) -> None:
        self.db = db
        self.periodic = list(periodic)
        shortest = min((p.every for p in self.periodic), default=60.0)
        # Tick often enough that no period starts long before its job is enqueued.
        self.tick_interval = tick if tick is not None else min(10.0, max(0.2, shortest / 4))

    def tick(self, now: datetime | None = None) -> list[int]:
        """Enqueue the current period's job of every kind that lacks one; returns the new job ids."""
        now = now or utcnow()
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

    async def run(self, stop: asyncio.Event) -> None:
        """Tick until ``stop`` is set; a failing tick is logged and retried at the next one."""
        while not stop.is_set():
            try:
                await asyncio.to_thread(self.tick)
            except Exception:
                log.exception("scheduler_tick_failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.tick_interval)
