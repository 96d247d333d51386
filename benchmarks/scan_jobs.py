"""Vulnerability scanning through the product: the scan job, the rescan job and the database import.

    .venv/bin/python -m benchmarks.scan_jobs [--section scan,rescan,import] [--workdir DIR]
        [--size-mib 200] [--records 20000] [--import-records 100000] [--inventories 1000]

Every measured run is a fresh process on a fresh data directory (SQLite, encryption at rest on, as
``make run`` has it) whose peak RSS (VmHWM) is its own; data is set up by another process first.

* **scan**: the ~200 MiB Debian-like image of ``benchmarks.scan`` is pushed through the upload and
  manifest services with ``--records`` OSV records imported; the scan job then runs through the job
  runner (claim, handler, settle): **cold** reads every layer from the blob store through the
  encryption wrapper; **warm** is a second manifest with the same layers and another config, pushed
  after the first scan, so every layer inventory comes from the cache. osv-scanner scans the same
  image archive with the same records (its time includes loading its zip database).
* **rescan**: ``--inventories`` stored inventories of that image (one scanned, the rest copies of its
  rows under other digests) and an import of advisories for 50 of its packages; the rescan job the
  import queues is measured.
* **import**: ``--import-records`` generated OSV records in per-ecosystem ``all.zip`` dumps, imported
  into an empty database, then imported again (every record unchanged, as a sync of unchanged dumps).

Targets: scan cold <= 2 s and faster than osv-scanner, warm <= 0.2 s, rescan of 1,000 inventories
<= 10 s, import of 100,000 records <= 60 s, peak RSS < 300 MiB. Wall and CPU time are both reported:
on a shared machine the CPU time is the steadier figure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from benchmarks.scan import (
    MiB,
    _layers_of,
    _peak_rss_mib,
    generate,
    make_records,
    run_osv_scanner,
    write_osv_scanner_db,
)

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("CARGOBAY_CACHE_DIR", REPO / ".cache"))
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
REGISTRY = "bench"
REPOSITORY = "debian/app"


# -- helpers run inside the child processes ----------------------------------------------------------


def _runtime(data_dir: Path) -> Any:
    from cargobay.config import Settings
    from cargobay.runtime import build_runtime

    os.environ.pop("CARGOBAY_DATABASE_URL", None)
    return build_runtime(Settings(data_dir=data_dir, log_level="warning"))


def _registry(runtime: Any) -> str:
    from cargobay.services import registries, tenancy

    def work(session: Any) -> str:
        found = registries.get_by_name(session, REGISTRY)
        if found is not None:
            return str(found.id)
        contract = tenancy.create_contract(session, "bench")
        registry = registries.create_registry(
            session, contract_number=contract.number, name=REGISTRY, location="de/fra"
        )
        registries.mark_running(session, registry.id)
        return str(registry.id)

    return runtime.db.write_sync(work)


async def _chunks(data: bytes, size: int = MiB) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _descriptor(media_type: str, data: bytes) -> dict[str, Any]:
    import hashlib

    return {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(data).hexdigest(),
        "size": len(data),
    }


def _config(note: str, layers: int) -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"Env": [f"NOTE={note}"]},
            "rootfs": {"type": "layers"},
        }
        | {"history": [{"created_by": f"layer {i}"} for i in range(layers)]}
    ).encode()


def _manifest(config: bytes, layers: list[bytes]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": _descriptor(OCI_CONFIG, config),
            "layers": [_descriptor(OCI_LAYER, layer) for layer in layers],
        }
    ).encode()


def _archive_layers(archive: Path) -> list[bytes]:
    tar, members = _layers_of(archive)
    with tar:
        return [tar.extractfile(m).read() for m in members]  # type: ignore[union-attr]


async def _push_blobs(runtime: Any, registry_id: str, blobs: list[bytes]) -> None:
    from cargobay.domain.digests import Digest

    for data in blobs:
        await runtime.services.uploads.monolithic(
            registry_id, REPOSITORY, Digest.of(data), _chunks(data), len(data)
        )


async def _push_manifest(runtime: Any, registry_id: str, tag: str, body: bytes) -> str:
    result = await runtime.services.manifests.put(registry_id, REPOSITORY, tag, body, OCI_MANIFEST)
    return str(result.digest)


def _write_dumps(folder: Path, records: list[dict[str, Any]]) -> list[Path]:
    """Per-ecosystem all.zip dumps, as osv.dev exports them."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        groups.setdefault(record["affected"][0]["package"]["ecosystem"].split(":", 1)[0], []).append(record)
    paths = []
    for ecosystem, items in sorted(groups.items()):
        path = folder / ecosystem / "all.zip"
        path.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
            for record in items:
                zf.writestr(f"{record['id']}.json", json.dumps(record, indent=2))
        paths.append(path)
    return paths


def _measure(fn: Any) -> tuple[Any, float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - start, time.process_time() - cpu


async def _measure_async(coro: Any) -> tuple[Any, float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    result = await coro
    return result, time.perf_counter() - start, time.process_time() - cpu


def _runner(runtime: Any, kinds: tuple[str, ...]) -> Any:
    from cargobay.jobs.queue import JobQueue
    from cargobay.worker import JobRunner, build_jobs

    handlers = build_jobs(runtime).handlers
    return JobRunner(JobQueue(runtime.db), {k: handlers[k] for k in kinds}, concurrency=1)


def _job_results(runtime: Any, kind: str) -> list[dict[str, Any]]:
    from sqlalchemy import select

    from cargobay.db.models import Job

    return runtime.db.read_sync(
        lambda s: [j.result for j in s.scalars(select(Job).where(Job.kind == kind).order_by(Job.id))]
    )


# -- scan ----------------------------------------------------------------------------------------


def child_scan_setup(data_dir: Path, archive: Path, records_zip: Path) -> dict[str, Any]:
    runtime = _runtime(data_dir)
    registry_id = _registry(runtime)
    imported = runtime.services.vulndb.import_paths([records_zip])
    layers = _archive_layers(archive)
    cold_config, warm_config = _config("cold", len(layers)), _config("warm", len(layers))

    async def push() -> str:
        await _push_blobs(runtime, registry_id, [cold_config, warm_config, *layers])
        digest = await _push_manifest(runtime, registry_id, "cold", _manifest(cold_config, layers))
        await runtime.close()
        return digest

    digest = asyncio.run(push())
    return {"records": imported.records, "digest": digest, "layers": len(layers)}


def child_scan(data_dir: Path, archive: Path) -> dict[str, Any]:
    from cargobay.services.scan_jobs import SCAN_JOB

    runtime = _runtime(data_dir)
    registry_id = _registry(runtime)
    layers = _archive_layers(archive)  # only to name them in the warm manifest (not timed)
    warm_body = _manifest(_config("warm", len(layers)), layers)
    del layers

    async def run() -> dict[str, Any]:
        runner = _runner(runtime, (SCAN_JOB,))
        ran, cold_wall, cold_cpu = await _measure_async(runner.run_until_idle())
        assert ran == 1
        await _push_manifest(runtime, registry_id, "warm", warm_body)
        ran, warm_wall, warm_cpu = await _measure_async(runner.run_until_idle())
        assert ran == 1
        await runtime.close()
        return {
            "cold_seconds": cold_wall,
            "cold_cpu_seconds": cold_cpu,
            "warm_seconds": warm_wall,
            "warm_cpu_seconds": warm_cpu,
        }

    out = asyncio.run(run())
    out["jobs"] = _job_results(runtime, SCAN_JOB)
    out["peak_rss_mib"] = _peak_rss_mib()
    return out


# -- rescan --------------------------------------------------------------------------------------


def child_rescan_setup(data_dir: Path, archive: Path, records_zip: Path, inventories: int) -> dict[str, Any]:
    """One scanned image, then its rows copied under ``inventories - 1`` other digests."""
    from cargobay.services.scan_jobs import SCAN_JOB

    runtime = _runtime(data_dir)
    registry_id = _registry(runtime)
    runtime.services.vulndb.import_paths([records_zip])
    layers = _archive_layers(archive)
    config = _config("rescan", len(layers))

    async def push_and_scan() -> str:
        await _push_blobs(runtime, registry_id, [config, *layers])
        digest = await _push_manifest(runtime, registry_id, "base", _manifest(config, layers))
        await _runner(runtime, (SCAN_JOB,)).run_until_idle()
        return digest

    digest = asyncio.run(push_and_scan())
    copies = _clone_scanned(runtime, digest, inventories - 1)
    asyncio.run(runtime.close())
    return {"digest": digest, "copies": copies}


def _clone_scanned(runtime: Any, digest: str, copies: int) -> int:
    """Copy a scanned manifest's rows (manifest, inventory, key index, findings) under new digests."""
    import hashlib

    from sqlalchemy import insert, literal, select

    from cargobay.db.models import (
        Manifest,
        ScanFinding,
        ScanFindingAlias,
        ScanInventory,
        ScanInventoryKey,
        table_of,
    )

    def copy(session: Any, model: Any, where: Any, replace: dict[str, Any]) -> None:
        table = table_of(model)
        names = [
            c.name
            for c in table.columns
            if not (c.primary_key and c.autoincrement is True and c.name == "id")
        ]
        values = [literal(replace[n]) if n in replace else table.c[n] for n in names]
        session.execute(insert(table).from_select(names, select(*values).where(where)))

    def work(session: Any) -> int:
        manifest = session.scalars(select(Manifest).where(Manifest.digest == digest)).one()
        columns = [c.key for c in Manifest.__table__.columns if c.key != "id"]
        for n in range(copies):
            other = "sha256:" + hashlib.sha256(f"{digest}-{n}".encode()).hexdigest()
            values = {c: getattr(manifest, c) for c in columns} | {"digest": other}
            new_id = session.execute(insert(Manifest).values(**values).returning(Manifest.id)).scalar_one()
            mine = manifest.registry_id  # (registry, digest) leads both primary keys
            inventory_of = (ScanInventory.registry_id == mine) & (ScanInventory.digest == digest)
            keys_of = (ScanInventoryKey.registry_id == mine) & (ScanInventoryKey.digest == digest)
            copy(session, ScanInventory, inventory_of, {"digest": other})
            copy(session, ScanInventoryKey, keys_of, {"digest": other})
            copy(session, ScanFinding, ScanFinding.manifest_id == manifest.id, {"manifest_id": new_id})
            copy(
                session,
                ScanFindingAlias,
                ScanFindingAlias.manifest_id == manifest.id,
                {"manifest_id": new_id},
            )
        return copies

    return runtime.db.write_sync(work)


def child_rescan(data_dir: Path, update_zip: Path) -> dict[str, Any]:
    from cargobay.services.vulndb import RESCAN_JOB

    runtime = _runtime(data_dir)
    report, import_wall, import_cpu = _measure(lambda: runtime.services.vulndb.import_paths([update_zip]))

    async def run() -> tuple[Any, float, float]:
        measured = await _measure_async(_runner(runtime, (RESCAN_JOB,)).run_until_idle())
        await runtime.close()
        return measured

    ran, wall, cpu = asyncio.run(run())
    return {
        "import_seconds": import_wall,
        "import_cpu_seconds": import_cpu,
        "imported": report.records,
        "rescan_seconds": wall,
        "rescan_cpu_seconds": cpu,
        "jobs": ran,
        "result": _job_results(runtime, RESCAN_JOB)[-1],
        "peak_rss_mib": _peak_rss_mib(),
    }


def update_records(
    keys: list[tuple[str, str, str]], records: list[dict[str, Any]], packages: int, seed: int
) -> list[dict[str, Any]]:
    """A day's delta for ``2 * packages`` of the image's Debian and PyPI packages: a new advisory for
    each of ``packages`` of them (half with a fix), and the advisories of ``packages`` others published
    again with a newer ``modified`` and nothing else changed (osv.dev does that every day)."""
    rng = random.Random(seed)
    chosen = [k for k in keys if k[0] in ("Debian:12", "PyPI")]
    rng.shuffle(chosen)
    added = []
    for n, (ecosystem, name, version) in enumerate(chosen[:packages]):
        debian = ecosystem.startswith("Debian")
        events: list[dict[str, str]] = [{"introduced": "0"}]
        if n % 2:
            events.append({"fixed": version + ("+deb12u99" if debian else ".post99")})
        added.append(
            {
                "id": f"DEBIAN-CVE-2099-{n:05d}" if debian else f"GHSA-upd{n:04d}-gen",
                "modified": "2099-01-01T00:00:00Z",
                "published": "2099-01-01T00:00:00Z",
                ("upstream" if debian else "aliases"): [f"CVE-2099-{n:05d}"],
                "details": "an advisory added by the benchmark's update",
                "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
                "affected": [
                    {
                        "package": {"ecosystem": ecosystem, "name": name},
                        "ranges": [{"type": "ECOSYSTEM", "events": events}],
                    }
                ],
            }
        )
    again = {(e, n) for e, n, _ in chosen[packages : 2 * packages]}
    republished = [
        r | {"modified": "2099-01-02T00:00:00Z"}
        for r in records
        if any((a["package"]["ecosystem"], a["package"]["name"]) in again for a in r["affected"])
    ]
    return added + republished


# -- import --------------------------------------------------------------------------------------


def import_corpus(count: int, seed: int) -> list[dict[str, Any]]:
    """Records shaped like osv.dev's: Debian and Ubuntu per release, PyPI/npm/Go/Maven with GHSA aliases,
    CVSS vectors on most, references, a paragraph of details, one to three affected entries."""
    rng = random.Random(seed)
    words = [rng.randbytes(6).hex()[: rng.randint(3, 9)] for _ in range(2000)]
    ecosystems = ["Debian:11", "Debian:12", "Ubuntu:22.04:LTS", "Alpine:v3.19", "PyPI", "npm", "Go", "Maven"]
    records = []
    for n in range(count):
        ecosystem = ecosystems[n % len(ecosystems)]
        cve = f"CVE-{2015 + n % 10}-{10000 + n}"
        prefix = {"Debian": "DEBIAN-", "Ubuntu": "UBUNTU-", "Alpine": "ALPINE-"}.get(
            ecosystem.split(":")[0], ""
        )
        record_id = f"{prefix}{cve}" if prefix else f"GHSA-{n:04x}-{rng.getrandbits(16):04x}-gen"
        affected = []
        for k in range(rng.choice((1, 1, 1, 2, 3))):
            name = (
                f"pkg{rng.randint(0, 20000)}"
                if ecosystem != "Maven"
                else f"org.gen{k}:a{rng.randint(0, 9000)}"
            )
            fixed = f"{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}"
            events: list[dict[str, str]] = [{"introduced": "0"}]
            if rng.random() < 0.8:
                events.append({"fixed": fixed})
            affected.append(
                {
                    "package": {"ecosystem": ecosystem, "name": name, "purl": f"pkg:generic/{name}"},
                    "ranges": [
                        {"type": "SEMVER" if ecosystem in ("npm", "Go") else "ECOSYSTEM", "events": events}
                    ],
                    "database_specific": {"source": "generated"},
                }
            )
        record: dict[str, Any] = {
            "schema_version": "1.6.0",
            "id": record_id,
            "modified": f"2024-{1 + n % 12:02d}-{1 + n % 28:02d}T10:00:00Z",
            "published": "2023-01-01T00:00:00Z",
            ("upstream" if prefix else "aliases"): [cve],
            "summary": " ".join(rng.choice(words) for _ in range(8)),
            "details": " ".join(rng.choice(words) for _ in range(rng.randint(40, 120))),
            "affected": affected,
            "references": [
                {"type": "WEB", "url": f"https://example.org/advisories/{record_id}/{i}"} for i in range(3)
            ],
        }
        if rng.random() < 0.7:
            record["severity"] = [
                {"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:L/A:N"}
            ]
        records.append(record)
    return records


def child_import(data_dir: Path, dumps: list[Path]) -> dict[str, Any]:
    runtime = _runtime(data_dir)
    first, wall, cpu = _measure(lambda: runtime.services.vulndb.import_paths(dumps))
    again, again_wall, again_cpu = _measure(lambda: runtime.services.vulndb.import_paths(dumps))
    asyncio.run(runtime.close())
    return {
        "records": first.records,
        "added": first.added,
        "problems": first.problem_count,
        "seconds": wall,
        "cpu_seconds": cpu,
        "unchanged_seconds": again_wall,
        "unchanged_cpu_seconds": again_cpu,
        "unchanged": again.unchanged,
        "database_mib": sum(p.stat().st_size for p in data_dir.glob("cargobay.db*")) / MiB,
        "peak_rss_mib": _peak_rss_mib(),
    }


# -- the parent ------------------------------------------------------------------------------------


def _child(*args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOBAY_") or k == "CARGOBAY_CACHE_DIR"}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.scan_jobs", *args],
        stdout=subprocess.PIPE,
        cwd=REPO,
        text=True,
        check=True,
        env=env,
    )
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def _fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def _image_keys(archive: Path) -> list[tuple[str, str, str]]:
    from cargobay.scanning.inventory import merge
    from cargobay.scanning.layers import read_layer

    tar, members = _layers_of(archive)
    with tar:
        image = merge([read_layer(tar.extractfile(m)) for m in members])  # type: ignore[arg-type]
    return sorted({(p.ecosystem, p.match_name, p.match_version) for p in image.packages if p.ecosystem})


def bench(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    sections = set(args.section.split(","))
    out: dict[str, Any] = {"load_average": os.getloadavg()[0], "cpus": os.cpu_count()}
    archive = generate(workdir, args.size_mib, args.seed)
    if sections & {"scan", "rescan"}:
        keys = _image_keys(archive)
        records = make_records(keys, args.records, args.seed)
        records_zip = _write_dumps(_fresh(workdir / "records"), records)
        bundle = workdir / "records" / "bundle.zip"
        with zipfile.ZipFile(bundle, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in records_zip:
                with zipfile.ZipFile(path) as src:
                    for name in src.namelist():
                        zf.writestr(name, src.read(name))
        print(f"image {archive.name}: {len(keys)} lookup keys; {len(records)} OSV records", file=sys.stderr)
    if "scan" in sections:
        data = _fresh(workdir / "scan-data")
        setup = _child(
            "--child", "scan-setup", "--data-dir", str(data), "--archive", str(archive), "--file", str(bundle)
        )
        scan = _child("--child", "scan", "--data-dir", str(data), "--archive", str(archive))
        out["scan"] = {"setup": setup, **scan}
        binary = os.environ.get("CARGOBAY_OSV_SCANNER") or str(CACHE / "bin" / "osv-scanner")
        if Path(binary).is_file():
            db = workdir / f"osvdb-{args.records}-s{args.seed}"
            write_osv_scanner_db(db, records)
            seconds, cpu, rss, vulns = run_osv_scanner(binary, archive, db, workdir)
            out["osv_scanner"] = {
                "seconds": seconds,
                "cpu_seconds": cpu,
                "peak_rss_mib": rss,
                "vulnerabilities": vulns,
            }
    if "rescan" in sections:
        data = _fresh(workdir / "rescan-data")
        setup = _child(
            "--child",
            "rescan-setup",
            "--data-dir",
            str(data),
            "--archive",
            str(archive),
            "--file",
            str(bundle),
            "--inventories",
            str(args.inventories),
        )
        update = workdir / "records" / "update.zip"
        with zipfile.ZipFile(update, "w") as zf:
            for record in update_records(keys, records, 25, args.seed):
                zf.writestr(f"{record['id']}.json", json.dumps(record))
        out["rescan"] = {
            "setup": setup,
            **_child("--child", "rescan", "--data-dir", str(data), "--file", str(update)),
        }
    if "import" in sections:
        folder = workdir / f"import-{args.import_records}-s{args.seed}"
        if not (folder / "done").is_file():
            _fresh(folder)
            _write_dumps(folder, import_corpus(args.import_records, args.seed))
            (folder / "done").write_text("ok")
        dumps = sorted(folder.rglob("all.zip"))
        data = _fresh(workdir / "import-data")
        out["import"] = {
            "dumps_mib": sum(p.stat().st_size for p in dumps) / MiB,
            **_child(
                "--child", "import", "--data-dir", str(data), *[a for p in dumps for a in ("--file", str(p))]
            ),
        }
    return out


def report(out: dict[str, Any]) -> None:
    print(f"load average {out['load_average']:.1f} on {out['cpus']} CPUs")
    scan = out.get("scan")
    if scan:
        cold, warm = scan["jobs"][0], scan["jobs"][1]
        print(
            f"scan job  cold {scan['cold_seconds']:.3f} s (CPU {scan['cold_cpu_seconds']:.3f} s; "
            f"{cold['layers_read']} layers read, {cold['packages']} packages, {cold['findings']} "
            f"vulnerabilities)  warm {scan['warm_seconds']:.3f} s (CPU {scan['warm_cpu_seconds']:.3f} s; "
            f"{warm['layers_cached']} layers cached)  peak RSS {scan['peak_rss_mib']:.0f} MiB"
        )
        peer = out.get("osv_scanner")
        if peer:
            print(
                f"osv-scanner  {peer['seconds']:.3f} s (CPU {peer['cpu_seconds']:.3f} s; "
                f"{peer['vulnerabilities']} vulnerabilities)  peak RSS {peer['peak_rss_mib']:.0f} MiB  "
                f"cold scan job speed-up {peer['seconds'] / scan['cold_seconds']:.1f}x "
                f"(CPU {peer['cpu_seconds'] / scan['cold_cpu_seconds']:.1f}x)"
            )
    rescan = out.get("rescan")
    if rescan:
        result = rescan["result"]
        print(
            f"rescan job  {rescan['rescan_seconds']:.3f} s (CPU {rescan['rescan_cpu_seconds']:.3f} s) for "
            f"{result['artifacts']} stored inventories ({result['changed']} changed) after an import of "
            f"{rescan['imported']} advisories ({rescan['import_seconds']:.2f} s)  "
            f"peak RSS {rescan['peak_rss_mib']:.0f} MiB"
        )
    imported = out.get("import")
    if imported:
        print(
            f"import  {imported['records']} records ({imported['dumps_mib']:.0f} MiB of zip dumps) in "
            f"{imported['seconds']:.1f} s (CPU {imported['cpu_seconds']:.1f} s), database "
            f"{imported['database_mib']:.0f} MiB; again, all unchanged: "
            f"{imported['unchanged_seconds']:.1f} s (CPU {imported['unchanged_cpu_seconds']:.1f} s)  "
            f"peak RSS {imported['peak_rss_mib']:.0f} MiB"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scan_jobs", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--section", default="scan,rescan,import")
    parser.add_argument("--size-mib", type=int, default=200)
    parser.add_argument("--records", type=int, default=20000)
    parser.add_argument("--import-records", type=int, default=100_000)
    parser.add_argument("--inventories", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--archive", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    children = {
        "scan-setup": lambda: child_scan_setup(args.data_dir, args.archive, args.file[0]),
        "scan": lambda: child_scan(args.data_dir, args.archive),
        "rescan-setup": lambda: child_rescan_setup(
            args.data_dir, args.archive, args.file[0], args.inventories
        ),
        "rescan": lambda: child_rescan(args.data_dir, args.file[0]),
        "import": lambda: child_import(args.data_dir, args.file),
    }
    if args.child:
        print(json.dumps(children[args.child]()))
        return 0
    temp = None if args.workdir is not None else tempfile.mkdtemp(prefix="cargobay-scan-jobs-")
    workdir = args.workdir if args.workdir is not None else Path(str(temp))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        out = bench(args, workdir)
    finally:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
    report(out)
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
