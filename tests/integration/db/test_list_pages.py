"""Management list pages on SQLite and PostgreSQL: every documented order pages the same rows by offset
and by keyset seek, NULLs last in both directions, and reads an index instead of sorting.

The plans relied on (``db/queries/keyset.py``), for ``scope = ?`` and a key with an index
(scope, key, tiebreak):

* SQLite: ``SEARCH <table> USING [COVERING] INDEX ix_<...> (<scope>=? [AND <key>>?|<key>=?])`` and
  never ``USE TEMP B-TREE FOR ORDER BY``; the NULL range of a nullable key is ``(<scope>=? AND <key>=?)``
  with ``<key> IS NULL`` (SQLite reads IS NULL as an equality).
* PostgreSQL: ``Index [Only] Scan [Backward] using ix_<...>`` with ``Index Cond: (<scope> = ...
  [AND <key> IS NULL])`` under ``Limit``, and never ``Sort`` nor ``Filter`` (checked with sequential
  scans and sorts priced out, so the test asks whether the index *can* serve the order, not which
  plan a small table prefers). The id order (keys without data yet, e.g. lastScan) may instead walk
  ``pk_manifests`` with a ``Filter`` on the scope when the statistics say the scope holds a large
  share of the table (here a third, never vacuumed): still no sort, and it stops after the page.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event, insert, text
from sqlalchemy.engine import Connection

from cargobay.db.engine import Database
from cargobay.db.models import Manifest, Repository
from cargobay.db.queries import artifacts, repositories
from cargobay.db.queries.keyset import Keys
from cargobay.domain.listing import Position
from cargobay.services import registries

ROWS = 240
PAGE = 25
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def _when(rng: random.Random) -> datetime:
    return NOW - timedelta(seconds=rng.randrange(0, 40) * 3600)  # many ties


@pytest.fixture
def seeded(db: Database, registry_id: str, contract_number: int) -> dict[str, Any]:
    """ROWS repositories of one manifest each, and one repository ``big`` of ROWS manifests; a third
    never pulled (NULL), many ties on every key. Another registry holds most rows of the tables, so
    that the planner's statistics look like a server's."""
    rng = random.Random(7)

    def work(session):  # type: ignore[no-untyped-def]
        other = registries.create_registry(
            session, contract_number=contract_number, name="other", location="x"
        )
        session.execute(
            insert(Repository),
            [{"registry_id": other.id, "name": f"o{i}", "created_at": NOW} for i in range(ROWS * 4)],
        )
        decoys = session.query(Repository.id).filter(Repository.registry_id == other.id).all()
        session.execute(
            insert(Manifest),
            [
                {
                    "registry_id": other.id,
                    "repository_id": row.id,
                    "digest": f"sha256:{i:064x}",
                    "media_type": "application/vnd.oci.image.manifest.v1+json",
                    "size": 10,
                    "body": b"{}",
                    "created_at": NOW,
                    "pushed_at": NOW,
                }
                for i, row in enumerate(decoys)
            ],
        )
        repos = []
        for i in range(ROWS):
            pulled = _when(rng) if i % 3 else None
            repos.append(
                {
                    "registry_id": registry_id,
                    "name": f"team/app-{rng.randrange(10**6):06d}-{i}",
                    "created_at": NOW,
                    "push_count": rng.randrange(3),
                    "pull_count": rng.randrange(3) if pulled else 0,
                    "last_pushed_at": _when(rng) if i % 5 else None,
                    "last_pulled_at": pulled,
                }
            )
        session.execute(insert(Repository), repos)
        session.execute(insert(Repository), [{**repos[0], "name": "big", "last_pushed_at": NOW}])
        ids = {r.name: r.id for r in session.query(Repository.id, Repository.name)}
        manifests = []
        for i, repo in enumerate([r["name"] for r in repos] + ["big"] * ROWS):
            pulled = _when(rng) if i % 3 else None
            manifests.append(
                {
                    "registry_id": registry_id,
                    "repository_id": ids[repo],
                    "digest": f"sha256:{i:064x}",
                    "media_type": "application/vnd.oci.image.manifest.v1+json",
                    "size": 10,
                    "body": b"{}",
                    "created_at": NOW,
                    "pushed_at": _when(rng),
                    "pulled_at": pulled,
                    "push_count": rng.randrange(3),
                    "pull_count": rng.randrange(3) if pulled else 0,
                }
            )
        session.execute(insert(Manifest), manifests)
        return ids["big"]

    big = db.write_sync(work)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE" if db.is_sqlite else "VACUUM ANALYZE"))
    return {"registry_id": registry_id, "big": big}


# Every documented order with data behind it, as (list, orderBy key).
REPOSITORY_ORDERS = ["name", "lastPush", "lastPull", "pullCount", "pushCount", "artifactCount"]
ARTIFACT_ORDERS = ["pullCount", "pushCount", "lastPush", "lastPull", "lastScan"]


def _repository_pager(db: Database, registry_id: str, order: str, descending: bool) -> Callable[..., Keys]:
    def page(offset: int, after: Position | None) -> Keys:
        def work(session):  # type: ignore[no-untyped-def]
            return repositories.page(
                session,
                registry_id,
                order,
                descending,
                name_filter=None,
                nothing=False,
                offset=offset,
                limit=PAGE,
                after=after,
            )[1]

        return db.read_sync(work)

    return page


def _artifact_pager(
    db: Database, scope: str, scope_id: Any, order: str, descending: bool
) -> Callable[..., Keys]:
    fetch = artifacts.page_in_registry if scope == "registry" else artifacts.page_in_repository

    def page(offset: int, after: Position | None) -> Keys:
        ordering = artifacts.ordering(order, descending)
        return db.read_sync(lambda s: fetch(s, scope_id, ordering, offset, PAGE, after)[1])

    return page


def _pagers(db: Database, seeded: dict[str, Any]) -> Iterator[tuple[str, Callable[..., Keys]]]:
    for descending in (False, True):
        for order in REPOSITORY_ORDERS:
            if order == "name" and descending:
                continue  # not a documented order
            yield (
                f"repositories {order} desc={descending}",
                _repository_pager(db, seeded["registry_id"], order, descending),
            )
        for order in ARTIFACT_ORDERS:
            yield (
                f"registry artifacts {order} desc={descending}",
                _artifact_pager(db, "registry", seeded["registry_id"], order, descending),
            )
            yield (
                f"repository artifacts {order} desc={descending}",
                _artifact_pager(db, "repository", seeded["big"], order, descending),
            )


def _expected_order(rows: list[tuple[Any, Any]], descending: bool) -> list[tuple[Any, Any]]:
    present = sorted((r for r in rows if r[0] is not None), reverse=descending)
    absent = sorted((r for r in rows if r[0] is None), key=lambda r: r[1])
    return present + absent


def test_offset_and_seek_pages_agree_with_nulls_last_in_both_directions(
    db: Database, seeded: dict[str, Any]
) -> None:
    for label, page in _pagers(db, seeded):
        by_offset: list[tuple[Any, Any]] = []
        offset = 0
        while True:
            keys = page(offset, None)
            by_offset += keys.rows
            offset += PAGE
            if not keys.more:
                break
        by_seek: list[tuple[Any, Any]] = []
        after: Position | None = None
        while True:
            keys = page(0, after)
            by_seek += keys.rows
            after = keys.next
            if after is None:
                break
        assert by_seek == by_offset, label
        descending = "desc=True" in label
        assert by_offset == _expected_order(by_offset, descending), label
        assert len({r[1] for r in by_offset}) == len(by_offset) >= ROWS, label
        # an offset that falls inside the NULL range lands on the same rows as the seek
        middle = len(by_offset) - PAGE - 3
        assert page(middle, None).rows == by_offset[middle : middle + PAGE], label


@contextmanager
def _statements(db: Database) -> Iterator[list[tuple[str, Any]]]:
    seen: list[tuple[str, Any]] = []

    def capture(conn: Connection, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", capture)


def _plan(db: Database, statement: str, parameters: Any) -> str:
    raw = db.engine.raw_connection()
    try:
        cursor = raw.cursor()
        if db.is_sqlite:
            cursor.execute("EXPLAIN QUERY PLAN " + statement, parameters)
            return "\n".join(str(row[-1]) for row in cursor.fetchall())
        cursor.execute("SET enable_seqscan = off")
        cursor.execute("SET enable_sort = off")
        cursor.execute("EXPLAIN " + statement, parameters)

        return "\n".join(str(row[0]) for row in cursor.fetchall())
    finally:
        raw.close()


def test_every_ordered_page_reads_an_index_without_sorting(db: Database, seeded: dict[str, Any]) -> None:
    checked = 0
    for label, page in _pagers(db, seeded):
        if "artifactCount" in label:
            continue  # the one order without an index (the count is not stored)
        first = page(0, None)
        with _statements(db) as statements:
            page(ROWS - PAGE, None)  # a deep page by offset, into the NULL range where there is one
            page(0, first.next)  # a seek
        for statement, parameters in statements:
            if " LIMIT " not in statement:
                continue  # the page's rows and tags, by id: bounded by the page size
            plan = _plan(db, statement, parameters)
            checked += 1
            if db.is_sqlite:
                assert "TEMP B-TREE" not in plan, f"{label}\n{statement}\n{plan}"
                assert "USING COVERING INDEX" in plan, f"{label}\n{statement}\n{plan}"
            else:
                assert "Sort" not in plan, f"{label}\n{statement}\n{plan}"
                if "lastScan" in label and "pk_manifests" in plan:
                    continue  # id order: the primary key also serves it (filtered by scope), see above
                assert re.search(r"Index (Only )?Scan (Backward )?using (ix|uq)_", plan), f"{label}\n{plan}"
                assert "Filter" not in plan, f"{label}\n{statement}\n{plan}"
    assert checked >= 40
