"""Scans through the job queue: pushes enqueue them, layers are read once per registry, inventories are
stored, indexes show their children's findings, and the edge cases end in the documented states."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, func, select, update

from cargobay.db.engine import Database
from cargobay.db.models import Job, Manifest, Registry, Repository, ScanFinding, ScanInventory, ScanLayer
from cargobay.db.queries import findings, scans
from cargobay.runtime import Runtime
from cargobay.services import registries, scan_jobs
from cargobay.services.scan_results import RANKS
from tests.integration.scanning.conftest import Pusher, jobs_of, run_jobs
from tests.support import osv_records as R
from tests.support.vulnimages import (
    HELM_CHART,
    HELM_CONFIG,
    OCI_INDEX,
    app_layer,
    debian_base,
    image_config,
    image_manifest,
    index_manifest,
    python_layer,
    write_records,
)

BASE = debian_base()
PYTHON = python_layer()
# DSA-5514-1 (glibc) names CVE-2023-4527 and CVE-2023-4806 besides CVE-2023-4911.
EXPECTED = {
    "CVE-2024-28085",
    "CVE-2022-0563",
    "CVE-2023-4911",
    "CVE-2023-4527",
    "CVE-2023-4806",
    "CVE-2023-32681",
}


@pytest.fixture
def records(runtime: Runtime, tmp_path: Path) -> None:
    runtime.services.vulndb.import_paths([write_records(tmp_path / "osv", R.ALL)])


async def push_app(
    push: Pusher, repository: str, tag: str, note: str, layers: list[bytes] | None = None
) -> str:
    chosen = layers if layers is not None else [BASE, PYTHON, app_layer(note)]
    config = image_config(chosen, note)
    return await push.image(repository, tag, chosen, config, image_manifest(config, chosen))


def _manifest(db: Database, digest: str, repository: str | None = None) -> Manifest:
    def work(session: Any) -> Manifest:
        query = select(Manifest).where(Manifest.digest == digest)
        if repository is not None:
            query = query.join(Repository, Repository.id == Manifest.repository_id).where(
                Repository.name == repository
            )
        return session.scalars(query).one()

    return db.read_sync(work)


def _ids(db: Database, manifest_id: int) -> dict[str, Any]:
    rows = db.read_sync(findings.findings, manifest_id)
    return {r.vulnerability_id: r for r in rows}


async def test_a_push_enqueues_a_scan_in_its_transaction_and_shows_nulls_until_it_ran(
    runtime: Runtime, push: Pusher, records: None
) -> None:
    digest = await push_app(push, "team/app", "v1", "one")
    row = _manifest(runtime.db, digest)
    assert row.scan_status == "pending" and row.scanned_at is None
    assert (row.vuln_max_severity, row.vuln_total_count, row.vuln_fixable_count, row.vuln_total_score) == (
        None,
        None,
        None,
        None,
    )
    [job] = jobs_of(runtime.db, scan_jobs.SCAN_JOB)
    assert job.payload == {"manifest_id": row.id} and job.status == "queued"


async def test_a_scan_finds_the_debian_and_python_vulnerabilities(
    runtime: Runtime, push: Pusher, records: None
) -> None:
    digest = await push_app(push, "team/app", "v1", "one")
    await run_jobs(runtime)
    row = _manifest(runtime.db, digest)
    found = _ids(runtime.db, row.id)
    assert set(found) == EXPECTED

    wall = found["CVE-2024-28085"]  # util-linux: every binary of the source package, one vulnerability
    assert wall.fixable and {m["package"] for m in wall.matches} >= {"bsdutils", "util-linux", "mount"}
    assert {m["fixed_version"] for m in wall.matches} == {"2.38.1-5+deb12u1"}
    assert set(wall.aliases) >= {"DEBIAN-CVE-2024-28085", "DSA-5650-1"}
    assert wall.severity == RANKS["unknown"] and wall.score is None  # no CVSS in those records

    glibc = found["CVE-2023-4911"]
    assert (glibc.severity, glibc.score, glibc.fixable) == (RANKS["high"], 7.8, True)
    chfn = found["CVE-2022-0563"]
    assert (chfn.severity, chfn.fixable) == (RANKS["medium"], False)  # no fixed version: not fixable
    requests = found["CVE-2023-32681"]
    assert requests.matches[0]["purl"] == "pkg:pypi/requests@2.28.1" and requests.fixable

    assert row.scan_status == "scanned" and row.scanned_at is not None and row.scan_db_version == 1
    assert (row.vuln_total_count, row.vuln_fixable_count) == (6, 5)
    assert row.vuln_max_severity == RANKS["high"]
    assert row.vuln_total_score == pytest.approx(7.8 + 5.5 + 6.1)
    repo = runtime.db.read_sync(
        lambda s: s.scalars(select(Repository).where(Repository.name == "team/app")).one()
    )
    assert repo.last_manifest_id == row.id and repo.last_severity == RANKS["high"]


async def test_layers_are_read_once_per_registry_and_inventories_are_kept(
    runtime: Runtime, push: Pusher, records: None, contract_number: int
) -> None:
    await push_app(push, "team/app", "v1", "one")
    await push_app(push, "team/other", "v1", "two")  # the same base and Python layers
    await run_jobs(runtime)
    results = [j.result for j in jobs_of(runtime.db, scan_jobs.SCAN_JOB)]
    assert results[0]["layers_read"] == 3
    assert (results[1]["layers_read"], results[1]["layers_cached"]) == (1, 2)

    other = runtime.db.write_sync(
        lambda s: (
            registries.create_registry(
                s, contract_number=contract_number, name="reg-two", location="de/fra"
            ).id
        )
    )
    runtime.db.write_sync(lambda s: s.execute(update(Registry).values(state="Running")))
    config = image_config([BASE, PYTHON, app_layer("one")], "one")
    await push.image(
        "team/app",
        "v1",
        [BASE, PYTHON, app_layer("one")],
        config,
        image_manifest(config, [BASE, PYTHON, app_layer("one")]),
        other,
    )
    await run_jobs(runtime)
    third = jobs_of(runtime.db, scan_jobs.SCAN_JOB)[-1].result
    assert third["layers_read"] == 3  # another tenant shares no cache entry
    layers = runtime.db.read_sync(lambda s: s.scalar(select(func.count()).select_from(ScanLayer)))
    assert layers == 4 + 3


async def test_a_stored_inventory_is_matched_again_without_reading_a_layer(
    runtime: Runtime, push: Pusher, records: None, registry_id: str
) -> None:
    digest = await push_app(push, "team/app", "v1", "one")
    await run_jobs(runtime)
    # Even with every blob gone from storage, the inventory answers.
    async for key in runtime.store.list(registry_id):
        await runtime.store.delete(key)
    row = _manifest(runtime.db, digest)
    outcome = await runtime.services.scans.scan(row.id)
    assert outcome.inventory_cached and outcome.layers_read == 0 and outcome.findings == 6


async def test_a_damaged_layer_cache_is_read_again(runtime: Runtime, push: Pusher, records: None) -> None:
    await push_app(push, "team/app", "v1", "one")
    await run_jobs(runtime)
    runtime.db.write_sync(lambda s: s.execute(update(ScanLayer).values(body=b"\x00CBS\x01" + b"x" * 40)))
    runtime.db.write_sync(lambda s: s.execute(delete(ScanInventory)))
    digest = await push_app(push, "team/app", "v2", "two")
    await run_jobs(runtime)
    result = jobs_of(runtime.db, scan_jobs.SCAN_JOB)[-1].result
    assert result["layers_read"] == 3 and result["findings"] == 6
    assert _manifest(runtime.db, digest).scan_status == "scanned"


async def test_an_index_shows_the_union_of_its_children(
    runtime: Runtime, push: Pusher, records: None
) -> None:
    debian_only = [debian_base(glibc="2.36-9+deb12u3"), app_layer("arm")]  # glibc fixed on this one
    amd = [BASE, PYTHON]
    configs = [image_config(amd, "amd"), image_config(debian_only, "arm")]
    children = [image_manifest(configs[0], amd), image_manifest(configs[1], debian_only)]
    for layers, config, child in zip([amd, debian_only], configs, children, strict=True):
        for blob in (config, *layers):
            await push.blob("team/multi", blob)
        await push.manifest(
            "team/multi", child_digest(child), child, "application/vnd.oci.image.manifest.v1+json"
        )
    index = index_manifest(children)
    digest = await push.manifest("team/multi", "latest", index, OCI_INDEX)
    await run_jobs(runtime)

    rows = _ids(runtime.db, _manifest(runtime.db, digest).id)
    assert set(rows) == EXPECTED
    assert {m["installed_version"] for m in rows["CVE-2024-28085"].matches} >= {
        "2.38.1-5+b1",
        "1:2.38.1-5+b1",
    }
    row = _manifest(runtime.db, digest)
    assert row.scan_status == "scanned" and row.vuln_total_count == 6
    arm = _manifest(runtime.db, child_digest(children[1]))
    assert "CVE-2023-4911" not in _ids(runtime.db, arm.id)


def child_digest(body: bytes) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(body).hexdigest()


async def test_an_index_pushed_before_its_children_were_scanned_waits_for_them(
    runtime: Runtime, push: Pusher, records: None
) -> None:
    config = image_config([BASE], "x")
    child = image_manifest(config, [BASE])
    for blob in (config, BASE):
        await push.blob("team/multi", blob)
    await push.manifest(
        "team/multi", child_digest(child), child, "application/vnd.oci.image.manifest.v1+json"
    )
    digest = await push.manifest("team/multi", "latest", index_manifest([child]), OCI_INDEX)
    index_id = _manifest(runtime.db, digest).id
    first = await runtime.services.scans.scan(index_id)  # its job runs before the child's
    assert first.status == "pending"
    await run_jobs(runtime)
    row = _manifest(runtime.db, digest)
    assert row.scan_status == "scanned" and row.vuln_total_count == 5  # no Python layer


async def test_non_images_are_unsupported_with_a_scan_time(runtime: Runtime, push: Pusher) -> None:
    chart = b"not really a chart"
    config = b'{"name":"mychart","version":"1.0.0"}'
    for blob in (config, chart):
        await push.blob("charts/mychart", blob)
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": HELM_CONFIG, "digest": child_digest(config), "size": len(config)},
            "layers": [{"mediaType": HELM_CHART, "digest": child_digest(chart), "size": len(chart)}],
        }
    ).encode()
    digest = await push.manifest(
        "charts/mychart", "1.0.0", body, "application/vnd.oci.image.manifest.v1+json"
    )
    await run_jobs(runtime)
    row = _manifest(runtime.db, digest)
    assert row.scan_status == "unsupported" and row.scanned_at is not None
    assert row.vuln_max_severity == RANKS["unknown"] and row.vuln_total_count is None


async def test_an_image_that_cannot_be_read_fails_with_a_scan_time(
    runtime: Runtime, push: Pusher, records: None
) -> None:
    garbage = b"\x1f\x8b" + bytes(range(256)) * 4  # gzip magic, then nonsense
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    digest = await push.image("team/app", "bad", [garbage], config, image_manifest(config, [garbage]))
    await run_jobs(runtime)
    row = _manifest(runtime.db, digest)
    assert row.scan_status == "failed" and row.scanned_at is not None
    assert row.vuln_max_severity == RANKS["unknown"] and row.vuln_total_count is None


async def test_short_repository_names_are_skipped_without_a_scan_time(
    runtime: Runtime, push: Pusher, records: None
) -> None:
    digest = await push_app(push, "a", "v1", "short")
    row = _manifest(runtime.db, digest)
    assert row.scan_status == "skipped" and row.scanned_at is None
    assert row.vuln_max_severity == RANKS["unknown"] and row.vuln_total_count is None
    assert jobs_of(runtime.db, scan_jobs.SCAN_JOB) == []
    assert not scan_jobs.scannable_name("x" * 256) and scan_jobs.scannable_name("ab")


async def test_a_registry_that_turns_scanning_on_scans_what_it_holds(
    runtime: Runtime, push: Pusher, records: None, registry_id: str
) -> None:
    runtime.db.write_sync(
        lambda s: s.execute(
            update(Registry).where(Registry.id == registry_id).values(vulnerability_scanning=False)
        )
    )
    digest = await push_app(push, "team/app", "v1", "one")
    assert _manifest(runtime.db, digest).scan_status is None and jobs_of(runtime.db, scan_jobs.SCAN_JOB) == []

    def enable(session: Any) -> None:
        registry = session.get(Registry, registry_id)
        scan_jobs.on_scanning_enabled(session, registry.id)
        registry.vulnerability_scanning = True

    runtime.db.write_sync(enable)
    await run_jobs(runtime)
    assert [j.result for j in jobs_of(runtime.db, scan_jobs.REGISTRY_JOB)] == [{"queued": 1}]
    assert _manifest(runtime.db, digest).scan_status == "scanned"


async def test_the_backlog_queues_manifests_stored_before_scanning_existed(
    runtime: Runtime, push: Pusher, records: None
) -> None:
    digest = await push_app(push, "team/app", "v1", "one")
    runtime.db.write_sync(lambda s: s.execute(update(Manifest).values(scan_status=None)))
    runtime.db.write_sync(lambda s: s.execute(delete(Job)))
    assert await runtime.services.scans.queue_registry(None) == 1
    await run_jobs(runtime)
    assert _manifest(runtime.db, digest).scan_status == "scanned"


async def test_deleting_the_last_pushed_artifact_moves_the_repository_severity(
    runtime: Runtime, push: Pusher, records: None, registry_id: str
) -> None:
    first = await push_app(push, "team/app", "v1", "one")
    clean = [app_layer("nothing to find")]
    config = image_config(clean, "clean")
    second = await push.image("team/app", "v2", clean, config, image_manifest(config, clean))
    await run_jobs(runtime)

    def repository() -> Repository:
        return runtime.db.read_sync(lambda s: s.scalars(select(Repository)).one())

    assert repository().last_severity == RANKS["none"]  # v2, pushed last, has nothing
    assert await runtime.services.manifests.delete(registry_id, "team/app", second)
    assert repository().last_severity == RANKS["high"]  # v1 is the last pushed now
    first_id = _manifest(runtime.db, first).id
    assert await runtime.services.manifests.delete(registry_id, "team/app", first)
    assert repository().last_manifest_id is None and repository().last_severity is None
    remaining = runtime.db.read_sync(
        lambda s: s.scalar(
            select(func.count()).select_from(ScanFinding).where(ScanFinding.manifest_id == first_id)
        )
    )
    assert remaining == 0


async def test_the_sbom_is_built_in_its_own_job(
    runtime: Runtime, push: Pusher, records: None, registry_id: str
) -> None:
    digest = await push_app(push, "team/app", "v1", "one")
    await run_jobs(runtime)
    assert [j.result for j in jobs_of(runtime.db, scan_jobs.SBOM_JOB)] == [{"built": True}]
    sbom = json.loads(await runtime.services.scans.sbom(registry_id, digest) or "{}")
    assert (sbom["bomFormat"], sbom["specVersion"]) == ("CycloneDX", "1.6")
    assert sbom["metadata"]["component"]["name"] == "team/app"
    purls = {c.get("purl") for c in sbom["components"]}
    assert "pkg:pypi/requests@2.28.1" in purls
    assert any(p and p.startswith("pkg:deb/debian/bsdutils@1:2.38.1-5%2Bb1") for p in purls)


async def test_a_scan_that_keeps_failing_ends_as_failed(
    runtime: Runtime, push: Pusher, records: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    digest = await push_app(push, "team/app", "v1", "one")

    async def broken(manifest_id: int) -> Any:
        raise RuntimeError("scanner bug")

    monkeypatch.setattr(runtime.services.scans, "scan", broken)
    runtime.db.write_sync(lambda s: s.execute(update(Job).values(max_attempts=1)))
    await run_jobs(runtime)
    row = _manifest(runtime.db, digest)
    assert row.scan_status == "failed" and row.scanned_at is not None


async def test_cve_search_is_answered_from_the_finding_indexes(
    runtime: Runtime, push: Pusher, records: None, registry_id: str
) -> None:
    first = await push_app(push, "team/app", "v1", "one")
    clean = [app_layer("nothing")]
    config = image_config(clean, "clean")
    await push.image("team/clean", "v1", clean, config, image_manifest(config, clean))
    await run_jobs(runtime)
    wanted = _manifest(runtime.db, first).id
    for ident in (
        "CVE-2024-28085",
        "DSA-5650-1",
        "DEBIAN-CVE-2024-28085",
        "GHSA-j8r2-6x86-q33q",
        "PYSEC-2023-74",
    ):
        assert runtime.db.read_sync(findings.manifests_with, registry_id, ident) == [wanted], ident
    assert runtime.db.read_sync(findings.manifests_with, registry_id, "CVE-2021-44228") == []
    assert runtime.db.read_sync(findings.manifests_with, "another-registry", "CVE-2024-28085") == []
    assert scans.PENDING == "pending"
