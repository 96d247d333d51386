"""Pull statistics: counted in memory on the hot path, written in batches (one UPDATE per row).

Counters are added with ``x = x + n`` so any number of processes can flush concurrently. The
management API may lag a pull by up to one flush interval.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.orm import Session

from cargobay.db.engine import Database
from cargobay.db.models import Manifest, Repository
from cargobay.db.types import utcnow
from cargobay.logs import get_logger

log = get_logger("cargobay.stats")


class PullRecorder:
    def __init__(self, db: Database, interval: float = 1.0) -> None:
        self.db = db
        self.interval = interval
        self._manifests: dict[int, tuple[int, datetime]] = {}
        self._repositories: dict[int, tuple[int, datetime]] = {}

    def record(self, manifest_id: int, repository_id: int) -> None:
        now = utcnow()
        count, _ = self._manifests.get(manifest_id, (0, now))
        self._manifests[manifest_id] = (count + 1, now)
        count, _ = self._repositories.get(repository_id, (0, now))
        self._repositories[repository_id] = (count + 1, now)

    async def flush(self) -> None:
        if not self._manifests and not self._repositories:
            return
        manifests, self._manifests = self._manifests, {}
        repos, self._repositories = self._repositories, {}

        def work(session: Session) -> None:
            for manifest_id, (count, at) in manifests.items():
                session.execute(
                    update(Manifest)
                    .where(Manifest.id == manifest_id)
                    .values(
                        pull_count=Manifest.pull_count + count,
                        pulled_at=at,
                    )
                )
            for repository_id, (count, at) in repos.items():
                session.execute(
                    update(Repository)
                    .where(Repository.id == repository_id)
                    .values(pull_count=Repository.pull_count + count, last_pulled_at=at)
                )

        try:
            await self.db.write(work)
        except Exception:
            log.exception("pull_stats_flush_failed")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        async def loop() -> None:
            while True:
                await asyncio.sleep(self.interval)
                await self.flush()

        task = asyncio.create_task(loop())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.flush()
