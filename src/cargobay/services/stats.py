"""Pull statistics: counted in memory on the hot path, written in batches (one UPDATE per row).

Counters are added with ``x = x + n`` so any number of processes can flush concurrently. The
management API may lag a pull by up to one flush interval.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime

from cargobay.db.engine import Database
from cargobay.db.queries import manifests as manifest_queries
from cargobay.db.types import utcnow
from cargobay.logs import get_logger
from cargobay.periodic import periodically

log = get_logger("cargobay.stats")


class PullRecorder:
    def __init__(self, db: Database, interval: float = 1.0) -> None:
        self.db = db
        self.interval = interval
        self._manifests: dict[int, tuple[int, datetime]] = {}
        self._repositories: dict[int, tuple[int, datetime]] = {}
        self._quiet_until = 0.0

    def record(self, manifest_id: int, repository_id: int) -> None:
        now = utcnow()
        count, _ = self._manifests.get(manifest_id, (0, now))
        self._manifests[manifest_id] = (count + 1, now)
        count, _ = self._repositories.get(repository_id, (0, now))
        self._repositories[repository_id] = (count + 1, now)

    async def flush(self) -> None:
        """Write the counts gathered so far; counts a failed write could not store are kept and
        added to the next flush, so a full disk or a database outage loses none."""
        if not self._manifests and not self._repositories:
            return
        manifests, self._manifests = self._manifests, {}
        repos, self._repositories = self._repositories, {}
        try:
            await self.db.write(manifest_queries.add_pulls, manifests, repos)
        except Exception as exc:
            _merge(self._manifests, manifests)
            _merge(self._repositories, repos)
            now = time.monotonic()
            if now >= self._quiet_until:  # one line per 30 s while the database is away
                self._quiet_until = now + 30
                log.warning("pull_stats_flush_failed", error=type(exc).__name__, kept=len(self._manifests))

    def running(self) -> contextlib.AbstractAsyncContextManager[None]:
        return periodically(self.interval, self.flush)


def _merge(into: dict[int, tuple[int, datetime]], earlier: dict[int, tuple[int, datetime]]) -> None:
    """Put counts back that were taken before newer ones arrived (the newer time wins)."""
    for key, (count, at) in earlier.items():
        newer_count, newer_at = into.get(key, (0, at))
        into[key] = (count + newer_count, max(at, newer_at))
