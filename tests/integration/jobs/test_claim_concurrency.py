"""Concurrent claimers, in threads and in processes, never get the same job."""

from __future__ import annotations

import multiprocessing
import threading
from collections import Counter
from concurrent.futures import ProcessPoolExecutor

import pytest
from sqlalchemy import select

from cargobay.db.engine import Database
from cargobay.db.models import Job
from cargobay.jobs import queue
from tests.support.claimers import claim_all

KINDS = ["test.work"]


def _fill(db: Database, count: int) -> set[int]:
    def work(session):  # type: ignore[no-untyped-def]
        return {queue.enqueue(session, "test.work", {"i": i}).id for i in range(count)}

    return db.write_sync(work)


def _assert_each_claimed_once(db: Database, expected: set[int], claimed: list[int]) -> None:
    repeats = {job_id: n for job_id, n in Counter(claimed).items() if n > 1}
    assert repeats == {}
    assert set(claimed) == expected
    rows = db.read_sync(lambda s: s.execute(select(Job.status, Job.attempts)).all())
    assert {(r.status, r.attempts) for r in rows} == {("succeeded", 1)}


def test_claimers_in_threads_never_share_a_job(db: Database, db_url: str) -> None:
    expected = _fill(db, 120)
    start = threading.Barrier(6)
    results: list[list[int]] = [[] for _ in range(6)]
    threads = [
        threading.Thread(target=claim_all, args=(db_url, f"t{n}", KINDS, start, results[n])) for n in range(6)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    claimed = [job_id for part in results for job_id in part]
    _assert_each_claimed_once(db, expected, claimed)
    assert sum(1 for part in results if part) > 1  # the work was actually shared


@pytest.mark.slow
def test_claimers_in_processes_never_share_a_job(db: Database, db_url: str) -> None:
    expected = _fill(db, 150)
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        start = manager.Barrier(3)
        with ProcessPoolExecutor(3, mp_context=context) as pool:
            futures = [pool.submit(claim_all, db_url, f"p{n}", KINDS, start) for n in range(3)]
            parts = [f.result(timeout=180) for f in futures]
    claimed = [job_id for part in parts for job_id in part]
    _assert_each_claimed_once(db, expected, claimed)
    assert sum(1 for part in parts if part) > 1  # the work was shared (a process may start late)
