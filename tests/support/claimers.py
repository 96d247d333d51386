"""A job claimer to run in a separate process (multiprocessing, spawn): claims until none is left."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any, Protocol

from cargobay.db.engine import Database
from cargobay.jobs import queue


class Gate(Protocol):
    def wait(self, timeout: float | None = ...) -> Any: ...


def claim_all(
    url: str, worker_id: str, kinds: list[str], start: Gate, out: list[int] | None = None
) -> list[int]:
    """Once every claimer is at ``start`` (a barrier), claim and complete jobs in batches of two
    until a claim comes back empty; returns the ids."""
    db = Database(url)
    claimed: list[int] = []
    start.wait(30)
    try:
        while jobs := db.write_sync(
            lambda s: queue.claim(s, worker_id, kinds, timedelta(minutes=5), limit=2)
        ):
            for job in jobs:
                claimed.append(job.id)
                time.sleep(0.001)  # a little work, so claimers interleave
                assert db.write_sync(queue.complete, job)
    finally:
        db.dispose()
    if out is not None:
        out.extend(claimed)
    return claimed
