"""Rescans after a database update: only recent artifacts (pushed or pulled in 30 days) holding a package
whose advisories changed are re-matched, from their stored inventories; the others keep their result."""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from cargobay.db.engine import RawTx
from cargobay.db.models import Manifest
from cargobay.db.queries import findings, scans
from cargobay.db.types import utcnow
from cargobay.runtime import Runtime
from cargobay.services.scan_results import RANKS
from cargobay.services.vulndb import RESCAN_JOB
from tests.integration.scanning.conftest import Pusher, jobs_of, run_jobs
from tests.support import osv_records as R
from tests.support import plans
from tests.support.vulnimages import (
    OCI_INDEX,
    app_layer,
    debian_base,
    image_config,
    image_manifest,
    index_manifest,
    python_layer,
    sha256,
    write_records,
)

BASE = debian_base()
PYTHON = python_layer()
FIRST = [R.DEBIAN_CVE_2024_28085, R.DSA_5650_1, R.GHSA_REQUESTS]


def _import(runtime: Runtime, folder: Path, records: list[dict[str, Any]]) -> int | None:
    return runtime.services.vulndb.import_paths([write_records(folder, records)]).version


async def _push(push: Pusher, repository: str, layers: list[bytes], note: str) -> str:
    config = image_config(layers, note)
    return await push.image(repository, "latest", layers, config, image_manifest(config, layers))


def _row(runtime: Runtime, digest: str) -> Manifest:
    return runtime.db.read_sync(lambda s: s.scalars(select(Manifest).where(Manifest.digest == digest)).one())


def _vulns(runtime: Runtime, digest: str) -> set[str]:
    return {r.vulnerability_id for r in runtime.db.read_sync(findings.findings, _row(runtime, digest).id)}


def _age(runtime: Runtime, digest: str, days: int) -> None:
    old = utcnow() - timedelta(days=days)
    runtime.db.write_sync(
        lambda s: s.execute(
            update(Manifest).where(Manifest.digest == digest).values(pushed_at=old, pulled_at=old)
        )
    )


async def test_an_import_that_adds_an_advisory_rescans_recent_artifacts_that_have_the_package(
    runtime: Runtime, push: Pusher, tmp_path: Path
) -> None:
    _import(runtime, tmp_path / "one", FIRST)
    recent = await _push(push, "team/app", [BASE, PYTHON], "recent")
    old = await _push(push, "team/old", [BASE, app_layer("old")], "old")
    pythonless = await _push(push, "team/py", [python_layer({"requests": "2.31.0"})], "py")
    await run_jobs(runtime)
    _age(runtime, old, days=31)
    before = {d: _row(runtime, d).scanned_at for d in (recent, old, pythonless)}
    assert "CVE-2023-4911" not in _vulns(runtime, recent)

    assert _import(runtime, tmp_path / "two", [R.DEBIAN_CVE_2023_4911]) == 2
    await run_jobs(runtime)  # the import queued the rescan

    [*_, rescan] = jobs_of(runtime.db, RESCAN_JOB)
    assert rescan.result == {"version": 2, "inventories": 2, "artifacts": 1, "changed": 1}
    assert "CVE-2023-4911" in _vulns(runtime, recent)
    fresh = _row(runtime, recent)
    assert fresh.scan_db_version == 2 and fresh.scanned_at > before[recent]
    assert fresh.vuln_max_severity == RANKS["high"]
    assert "CVE-2023-4911" not in _vulns(runtime, old)  # 31 days untouched: not rescanned
    assert _row(runtime, old).scanned_at == before[old] and _row(runtime, old).scan_db_version == 1
    assert _row(runtime, pythonless).scanned_at == before[pythonless]  # no glibc: nothing to re-match
    assert runtime.services.vulndb.state().rescanned_version == 2


async def test_a_recent_pull_keeps_an_old_artifact_in_the_rescans(
    runtime: Runtime, push: Pusher, tmp_path: Path
) -> None:
    _import(runtime, tmp_path / "one", FIRST)
    digest = await _push(push, "team/app", [BASE], "pulled")
    await run_jobs(runtime)
    old = utcnow() - timedelta(days=90)
    runtime.db.write_sync(
        lambda s: s.execute(update(Manifest).values(pushed_at=old, pulled_at=utcnow() - timedelta(days=2)))
    )
    _import(runtime, tmp_path / "two", [R.DEBIAN_CVE_2023_4911])
    await run_jobs(runtime)
    assert "CVE-2023-4911" in _vulns(runtime, digest)


async def test_a_reclassified_advisory_changes_the_severity_and_a_withdrawn_one_disappears(
    runtime: Runtime, push: Pusher, tmp_path: Path
) -> None:
    _import(runtime, tmp_path / "one", [*FIRST, R.DEBIAN_CVE_2023_4911])
    digest = await _push(push, "team/app", [BASE, PYTHON], "app")
    await run_jobs(runtime)
    assert _row(runtime, digest).vuln_max_severity == RANKS["high"]

    critical = copy.deepcopy(R.DEBIAN_CVE_2023_4911)
    critical["modified"] = "2025-01-01T00:00:00Z"
    critical["severity"] = [{"type": "CVSS_V3", "score": R.V31_LOG4SHELL}]
    _import(runtime, tmp_path / "two", [critical])
    await run_jobs(runtime)
    row = _row(runtime, digest)
    assert row.vuln_max_severity == RANKS["critical"] and row.vuln_total_score == 10.0 + 6.1

    gone = copy.deepcopy(R.GHSA_REQUESTS)
    gone["modified"] = "2025-02-01T00:00:00Z"
    gone["withdrawn"] = "2025-02-01T00:00:00Z"
    _import(runtime, tmp_path / "three", [gone])
    await run_jobs(runtime)
    assert "CVE-2023-32681" not in _vulns(runtime, digest)
    assert _row(runtime, digest).vuln_total_count == 2 and _row(runtime, digest).vuln_total_score == 10.0


async def test_an_index_follows_the_rescan_of_its_children(
    runtime: Runtime, push: Pusher, tmp_path: Path
) -> None:
    _import(runtime, tmp_path / "one", FIRST)
    layers = [BASE]
    config = image_config(layers, "child")
    child = image_manifest(config, layers)
    for blob in (config, BASE):
        await push.blob("team/multi", blob)
    await push.manifest("team/multi", sha256(child), child, "application/vnd.oci.image.manifest.v1+json")
    index = await push.manifest("team/multi", "latest", index_manifest([child]), OCI_INDEX)
    await run_jobs(runtime)
    assert "CVE-2023-4911" not in _vulns(runtime, index)
    _import(runtime, tmp_path / "two", [R.DEBIAN_CVE_2023_4911])
    await run_jobs(runtime)
    assert "CVE-2023-4911" in _vulns(runtime, index)
    assert _row(runtime, index).vuln_total_count == _row(runtime, sha256(child)).vuln_total_count


async def test_a_scan_that_an_import_overtook_matches_again(
    runtime: Runtime, push: Pusher, tmp_path: Path
) -> None:
    _import(runtime, tmp_path / "one", FIRST)
    digest = await _push(push, "team/app", [BASE], "raced")
    scans = runtime.services.scans
    real = scans._match
    calls = 0

    async def overtaken(inventory: Any) -> Any:
        nonlocal calls
        calls += 1
        rows = await real(inventory)
        if calls == 1:  # an import ends between this match and the write of its result
            await asyncio.to_thread(_import, runtime, tmp_path / "two", [R.DEBIAN_CVE_2023_4911])
        return rows

    scans._match = overtaken  # type: ignore[method-assign]
    await scans.scan(_row(runtime, digest).id)
    assert calls == 2 and "CVE-2023-4911" in _vulns(runtime, digest)
    assert _row(runtime, digest).scan_db_version == 2


async def test_a_rescan_with_nothing_new_does_nothing(runtime: Runtime, push: Pusher, tmp_path: Path) -> None:
    _import(runtime, tmp_path / "one", FIRST)
    await _push(push, "team/app", [BASE], "x")
    await run_jobs(runtime)
    report = await runtime.services.scans.rescan()
    assert (report.version, report.inventories, report.artifacts) == (1, 0, 0)


async def test_artifacts_on_one_base_share_the_rescan_and_others_get_their_own(
    runtime: Runtime, push: Pusher, tmp_path: Path
) -> None:
    _import(runtime, tmp_path / "one", FIRST)
    same = [await _push(push, f"team/app{i}", [BASE, app_layer(f"app {i}")], f"app{i}") for i in range(3)]
    patched = await _push(push, "team/patched", [debian_base(glibc="2.36-9+deb12u3")], "patched")
    await run_jobs(runtime)
    _import(runtime, tmp_path / "two", [R.DEBIAN_CVE_2023_4911])
    await run_jobs(runtime)
    for digest in same:
        assert "CVE-2023-4911" in _vulns(runtime, digest)
        assert _row(runtime, digest).vuln_max_severity == RANKS["high"]
    assert "CVE-2023-4911" not in _vulns(runtime, patched)  # its glibc has the fix
    assert {_row(runtime, d).scan_db_version for d in [*same, patched]} == {2}


async def test_changed_keys_read_by_key_or_by_inventory_are_the_same(
    runtime: Runtime, push: Pusher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _import(runtime, tmp_path / "one", FIRST)
    digests = [
        await _push(push, "team/app", [BASE, PYTHON], "app"),
        await _push(push, "team/py", [python_layer({"requests": "2.31.0"})], "py"),
    ]
    await run_jobs(runtime)
    newer = copy.deepcopy(R.GHSA_REQUESTS) | {"modified": "2025-01-01T00:00:00Z"}
    _import(runtime, tmp_path / "two", [R.DEBIAN_CVE_2023_4911, newer])
    inventories = sorted((_row(runtime, d).registry_id, d) for d in digests)

    by_key = runtime.db.read_sync(scans.changed_keys_of, inventories, 1)
    monkeypatch.setattr(scans, "FEW_KEYS", 0)
    by_inventory = runtime.db.read_sync(scans.changed_keys_of, inventories, 1)

    assert by_key == by_inventory
    assert {k for keys in by_key.values() for k in keys} == {("Debian:12", "glibc"), ("PyPI", "requests")}
    assert all(version == 2 for keys in by_key.values() for _, version in keys.values())


async def test_the_rescan_reads_inventories_and_artifacts_by_index(
    runtime: Runtime, push: Pusher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """(registry, digest) pairs are asked as ``registry_id = ? AND digest IN (...)``: SQLite reads a
    row-value IN list by scanning the whole table (12.6 s of the 1,000-inventory rescan benchmark)."""
    _import(runtime, tmp_path / "one", FIRST)
    digests = [await _push(push, f"team/app{i}", [BASE, app_layer(str(i))], f"app{i}") for i in range(3)]
    await run_jobs(runtime)
    _import(runtime, tmp_path / "two", [R.DEBIAN_CVE_2023_4911])
    inventories = sorted((_row(runtime, d).registry_id, d) for d in digests)  # one pair is read by index

    def reads(session: Any) -> None:
        scans.changed_keys_of(session, inventories, 1)
        monkeypatch.setattr(scans, "FEW_KEYS", 0)
        scans.changed_keys_of(session, inventories, 1)
        scans.rescannable(session, inventories, 2, utcnow() - timedelta(days=30))

    with plans.statements(runtime.db) as seen:
        runtime.db.read_sync(reads)
    wanted = [(q, p) for q, p in seen if "scan_inventory_keys" in q or "FROM manifests" in q]
    assert len(wanted) == 3
    for query, parameters in wanted:
        plan = plans.plan(runtime.db, query, parameters, sorts=True)
        if runtime.db.is_sqlite:
            assert "SEARCH scan_inventory_keys USING" in plan or "SEARCH manifests USING" in plan, plan
            assert "SCAN scan_inventory_keys" not in plan and "SCAN manifests" not in plan, plan
        else:
            assert "Seq Scan" not in plan, plan


async def test_a_rescan_skips_the_changes_every_artifact_was_scanned_after(
    runtime: Runtime, push: Pusher, tmp_path: Path
) -> None:
    _import(runtime, tmp_path / "one", FIRST)  # its rescan never runs: the scans below come after it
    app = await _push(push, "team/app", [BASE], "app")
    pythonless = await _push(push, "team/py", [python_layer({"requests": "2.31.0"})], "py")
    for digest in (app, pythonless):
        await runtime.services.scans.scan(_row(runtime, digest).id)
    _import(runtime, tmp_path / "two", [R.DEBIAN_CVE_2023_4911])

    report = await runtime.services.scans.rescan()

    assert (report.version, report.inventories, report.artifacts, report.changed) == (2, 1, 1, 1)
    assert "CVE-2023-4911" in _vulns(runtime, app)
    assert _row(runtime, app).scan_db_version == 2
    assert _row(runtime, pythonless).scan_db_version == 1  # holds nothing that changed after 1
    assert runtime.services.vulndb.state().rescanned_version == 2


async def test_artifacts_on_one_base_have_their_findings_replaced_together(
    runtime: Runtime, push: Pusher, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The findings a rescan replaces in images on one base are deleted by one statement per table,
    however many images there are (a statement per image was a third of the rescan benchmark)."""
    _import(runtime, tmp_path / "one", [*FIRST, R.DEBIAN_CVE_2023_4911])
    same = [await _push(push, f"team/app{i}", [BASE, app_layer(f"app {i}")], f"app{i}") for i in range(4)]
    await run_jobs(runtime)
    critical = copy.deepcopy(R.DEBIAN_CVE_2023_4911)
    critical["modified"] = "2025-01-01T00:00:00Z"
    critical["severity"] = [{"type": "CVSS_V3", "score": R.V31_LOG4SHELL}]
    _import(runtime, tmp_path / "two", [critical])
    deletes: list[str] = []
    run = RawTx.run

    def recording(tx: RawTx, sql: str, *params: Any) -> int:
        if sql.startswith("DELETE FROM scan_findings "):
            deletes.append(sql)
        return run(tx, sql, *params)

    monkeypatch.setattr(RawTx, "run", recording)
    report = await runtime.services.scans.rescan()

    assert (report.artifacts, report.changed) == (4, 4)
    assert len(deletes) == 1, deletes
    for digest in same:
        assert _row(runtime, digest).vuln_max_severity == RANKS["critical"]
        assert "CVE-2023-4911" in _vulns(runtime, digest)


# A GHSA for requests naming the util-linux CVE (made up: one vulnerability on two package keys).
SAME_CVE_ON_REQUESTS = copy.deepcopy(R.GHSA_REQUESTS) | {
    "id": "GHSA-test-same-cve0",
    "modified": "2025-01-01T00:00:00Z",
    "aliases": ["CVE-2024-28085"],
}


def _packages(runtime: Runtime, digest: str) -> dict[str, set[str]]:
    """The packages of each vulnerability of an artifact."""
    rows = runtime.db.read_sync(findings.findings, _row(runtime, digest).id)
    return {r.vulnerability_id: {str(m["package"]) for m in r.matches} for r in rows}


async def test_a_rescan_adding_a_package_to_a_vulnerability_keeps_its_other_packages(
    runtime: Runtime, push: Pusher, tmp_path: Path
) -> None:
    """A new advisory on another package key, naming a CVE the artifact already has (a GHSA for
    requests aliasing the util-linux CVE, made up for the test): the finding then has both packages,
    as a fresh scan of the same layers says."""
    _import(runtime, tmp_path / "one", FIRST)
    digest = await _push(push, "team/app", [BASE, PYTHON], "before")
    await run_jobs(runtime)
    _import(runtime, tmp_path / "two", [SAME_CVE_ON_REQUESTS])
    await run_jobs(runtime)
    fresh = await _push(push, "team/fresh", [BASE, PYTHON], "after")
    await run_jobs(runtime)

    rescanned, scanned = _packages(runtime, digest), _packages(runtime, fresh)
    assert {"bsdutils", "requests"} <= scanned["CVE-2024-28085"]
    assert rescanned == scanned


async def test_images_sharing_a_rescan_keep_their_own_other_packages(
    runtime: Runtime, push: Pusher, tmp_path: Path
) -> None:
    """Two images with the same Python layer over different bases get the same new matches for
    requests; only one of them has the CVE already on util-linux: each ends as a fresh scan says."""
    _import(runtime, tmp_path / "one", FIRST)
    layers = {"debian": [BASE, PYTHON], "plain": [app_layer("no dpkg"), PYTHON]}
    digests = {name: await _push(push, f"team/{name}", ls, name) for name, ls in layers.items()}
    await run_jobs(runtime)
    _import(runtime, tmp_path / "two", [SAME_CVE_ON_REQUESTS])
    await run_jobs(runtime)
    fresh = {
        name: await _push(push, f"team/{name}-fresh", ls, f"{name} fresh") for name, ls in layers.items()
    }
    await run_jobs(runtime)

    for name in layers:
        assert _packages(runtime, digests[name]) == _packages(runtime, fresh[name]), name
    assert _packages(runtime, digests["plain"])["CVE-2024-28085"] == {"requests"}
    assert {"bsdutils", "requests"} <= _packages(runtime, digests["debian"])["CVE-2024-28085"]
