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
  plan a small table prefers).
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from cargobay.db.engine import Database
from cargobay.db.models import Manifest, Repository, ScanFinding, ScanFindingAlias
from cargobay.db.queries import artifacts, repositories
from cargobay.db.queries.keyset import Keys
from cargobay.domain.listing import REGISTRY_ARTIFACT_ORDERS, Position
from cargobay.domain.listing import REPOSITORY_ARTIFACT_ORDERS as REPOSITORY_ARTIFACT_ORDER_KEYS
from cargobay.services import registries
from tests.support import plans

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
                    **_scan(rng, i),
                }
            )
        session.execute(insert(Manifest), manifests)
        return ids["big"]

    big = db.write_sync(work)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE" if db.is_sqlite else "VACUUM ANALYZE"))
    return {"registry_id": registry_id, "big": big}


def _scan(rng: random.Random, i: int) -> dict[str, Any]:
    """A scan summary: none for a quarter (not scanned: NULL keys), no counts for some (unsupported)."""
    if i % 4 == 0:
        return {}
    if i % 7 == 0:
        return {"scan_status": "unsupported", "scanned_at": _when(rng), "vuln_max_severity": 0}
    total = rng.randrange(4)
    return {
        "scan_status": "scanned",
        "scanned_at": _when(rng),
        "vuln_max_severity": rng.randrange(1, 6),
        "vuln_total_count": total,
        "vuln_fixable_count": rng.randrange(total + 1),
        "vuln_total_score": round(rng.randrange(total * 100 + 1) / 10, 1),
    }


# Every documented order, as (list, orderBy key).
REPOSITORY_ORDERS = ["name", "lastPush", "lastPull", "pullCount", "pushCount", "artifactCount"]
ARTIFACT_ORDERS = list(REGISTRY_ARTIFACT_ORDERS)
REPOSITORY_ARTIFACT_ORDERS = [o for o in REPOSITORY_ARTIFACT_ORDER_KEYS if o not in ARTIFACT_ORDERS]


def _repository_pager(db: Database, registry_id: str, order: str, descending: bool) -> Callable[..., Keys]:
    def page(offset: int, after: Position | None) -> Keys:
        def work(session):  # type: ignore[no-untyped-def]
            return repositories.page(
                session,
                registry_id,
                order,
                descending,
                name_filter=None,
                severities=None,
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
        for order in REPOSITORY_ARTIFACT_ORDERS:
            yield (
                f"repository artifacts {order} desc={descending}",
                _artifact_pager(db, "repository", seeded["big"], order, descending),
            )


def _expected_order(rows: list[tuple[Any, Any]], descending: bool) -> list[tuple[Any, Any]]:
    present = sorted((r for r in rows if r[0] is not None), reverse=descending)
    absent = sorted((r for r in rows if r[0] is None), key=lambda r: r[1])
    return present + absent


def _walk(page: Callable[..., Keys]) -> tuple[list[tuple[Any, Any]], list[tuple[Any, Any]]]:
    """Every row of a list, paged by offset and paged by seeking after each page's last row."""
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
        if (after := keys.next) is None:
            break
    return by_offset, by_seek


def test_offset_and_seek_pages_agree_with_nulls_last_in_both_directions(
    db: Database, seeded: dict[str, Any]
) -> None:
    for label, page in _pagers(db, seeded):
        by_offset, by_seek = _walk(page)
        assert by_seek == by_offset, label
        descending = "desc=True" in label
        assert by_offset == _expected_order(by_offset, descending), label
        assert len({r[1] for r in by_offset}) == len(by_offset) >= ROWS, label
        # an offset that falls inside the NULL range lands on the same rows as the seek
        middle = len(by_offset) - PAGE - 3
        assert page(middle, None).rows == by_offset[middle : middle + PAGE], label


def test_every_ordered_page_reads_an_index_without_sorting(db: Database, seeded: dict[str, Any]) -> None:
    checked = 0
    for label, page in _pagers(db, seeded):
        if "artifactCount" in label:
            continue  # the one order without an index (the count is not stored)
        first = page(0, None)
        with plans.statements(db) as statements:
            page(ROWS - PAGE, None)  # a deep page by offset, into the NULL range where there is one
            page(0, first.next)  # a seek
        for statement, parameters in statements:
            if " LIMIT " not in statement:
                continue  # the page's rows and tags, by id: bounded by the page size
            plan = plans.plan(db, statement, parameters)
            checked += 1
            if db.is_sqlite:
                assert "TEMP B-TREE" not in plan, f"{label}\n{statement}\n{plan}"
                assert "USING COVERING INDEX" in plan, f"{label}\n{statement}\n{plan}"
            else:
                assert "Sort" not in plan, f"{label}\n{statement}\n{plan}"
                assert re.search(r"Index (Only )?Scan (Backward )?using (ix|uq)_", plan), f"{label}\n{plan}"
                assert "Filter" not in plan, f"{label}\n{statement}\n{plan}"
    assert checked >= 40


# -- the search by vulnerability id (filter.vulnerabilityId) -----------------------------------------
def _affect(db: Database, registry_id: str, every: int) -> dict[str, set[int]]:
    """CVE-2024-0001 in every ``every``-th manifest of the registry, half of them found by an alias
    only; CVE-2024-0002 in the other registry's manifests (never in this one's results)."""

    def work(session):  # type: ignore[no-untyped-def]
        ids = sorted(session.scalars(select(Manifest.id).where(Manifest.registry_id == registry_id)))
        others = session.execute(
            select(Manifest.id, Manifest.registry_id).where(Manifest.registry_id != registry_id)
        ).all()
        finding = {"severity": 3, "fixable": True, "package_keys": "Debian\tglibc", "detail": {}}
        rows, aliases = [], []
        for n, manifest_id in enumerate(ids[::every]):
            ident = "CVE-2024-0001" if n % 2 else "DSA-9999-1"
            rows.append(
                {**finding, "manifest_id": manifest_id, "registry_id": registry_id, "vulnerability_id": ident}
            )
            if ident != "CVE-2024-0001":
                aliases.append(
                    {
                        "manifest_id": manifest_id,
                        "vulnerability_id": ident,
                        "alias": "CVE-2024-0001",
                        "registry_id": registry_id,
                    }
                )
        for manifest_id, other in others:
            for ident in ("CVE-2024-0001", "CVE-2024-0002"):
                rows.append(
                    {**finding, "manifest_id": manifest_id, "registry_id": other, "vulnerability_id": ident}
                )
        session.execute(insert(ScanFinding), rows)
        session.execute(insert(ScanFindingAlias), aliases)
        return {"CVE-2024-0001": set(ids[::every]), "DSA-9999-1": set(ids[::every][::2])}

    found = db.write_sync(work)
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE" if db.is_sqlite else "VACUUM ANALYZE"))
    return found


def _search(db: Database, registry_id: str, ident: str, order: str, descending: bool) -> Callable[..., Keys]:
    def page(offset: int, after: Position | None) -> Keys:
        ordering = artifacts.ordering(order, descending)
        return db.read_sync(
            lambda s: artifacts.page_in_registry(s, registry_id, ordering, offset, PAGE, after, ident)[1]
        )

    return page


@pytest.mark.parametrize("few", [True, False], ids=["few-sorted-here", "many-by-index"])
def test_a_search_by_vulnerability_id_pages_the_affected_artifacts_in_every_order(
    db: Database, seeded: dict[str, Any], few: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not few:
        monkeypatch.setattr(artifacts, "SEARCH_LIST", 10)  # the affected set counts as large
    expected = _affect(db, seeded["registry_id"], every=3)
    for ident, wanted in expected.items():
        for order in ARTIFACT_ORDERS:
            for descending in (False, True):
                page = _search(db, seeded["registry_id"], ident, order, descending)
                by_offset, by_seek = _walk(page)
                label = f"{ident} {order} desc={descending}"
                assert by_seek == by_offset, label
                assert by_offset == _expected_order(by_offset, descending), label
                assert {r[1] for r in by_offset} == wanted, label
                middle = len(by_offset) - PAGE - 3
                assert page(middle, None).rows == by_offset[middle : middle + PAGE], label
    assert _search(db, seeded["registry_id"], "CVE-2024-0002", "pullCount", True)(0, None).rows == []


def test_a_search_by_vulnerability_id_starts_from_the_findings_index(
    db: Database, seeded: dict[str, Any]
) -> None:
    """The affected artifacts are found by the (registry, id) and (registry, alias) indexes, and
    their keys read by primary key: no walk over the registry's artifacts testing each one."""
    _affect(db, seeded["registry_id"], every=40)
    for order in ARTIFACT_ORDERS:
        with plans.statements(db) as statements:
            _search(db, seeded["registry_id"], "CVE-2024-0001", order, True)(0, None)
        found = {s: plans.plan(db, s, p) for s, p in statements if s.lstrip().startswith("SELECT")}
        search = [plan for statement, plan in found.items() if "scan_finding_aliases" in statement]
        keys = [plan for statement, plan in found.items() if statement.startswith("SELECT manifests.")]
        assert len(search) == 1 and keys, order
        assert "ix_scan_findings_search" in search[0] and "ix_scan_finding_aliases_search" in search[0]
        for plan in keys:
            assert "ix_manifests_registry" not in plan, f"{order}\n{plan}"
            if db.is_sqlite:
                assert "USING INTEGER PRIMARY KEY" in plan, f"{order}\n{plan}"
            else:
                assert "pk_manifests" in plan and "Seq Scan" not in plan, f"{order}\n{plan}"
