"""Garbage-collection benchmark: collect 100,000 blobs / 10,000 manifests on SQLite and PostgreSQL.

    .venv/bin/python -m benchmarks.gc [--blobs 100000] [--manifests 10000] [--db sqlite,postgresql]
                                      [--pg-url postgresql://…] [--pull-seconds 10] [--pullers 4]
                                      [--workdir DIR] [--json FILE]

For each database, a fresh installation (``cargobay migrate``, filesystem storage, encryption off) is
seeded straight into its tables: ``--manifests`` tagged manifests in repositories of ten, each naming
``blobs / manifests`` blobs of its own, every blob a small file in the store (its content matches its
digest). Then half of the repositories are deleted as a repository delete leaves them (rows gone,
blobs queued for review, changed two days ago): half the blobs are garbage. PostgreSQL is the one
at ``--pg-url``, else a throw-away server started from the test suite's helper (needs ``initdb``).

With ``cargobay serve`` running on the installation, ``--pullers`` threads pull a kept manifest and one
of its blobs in a loop: ``--pull-seconds`` idle, then while ``cargobay gc --registry bench --grace 0``
runs in its own process (sweep unpaced). Reported: that process's wall time (its start included)
and peak RSS, the run's own time (from its row), blobs and bytes freed, blobs freed per second of the
run, pull p50/p99 idle and during GC, their p99 ratio, and refused pulls (any status but 200).
Afterwards it checks that every kept blob is still stored and every garbage blob gone.

Targets (issue 13): 100,000 blobs in <= 60 s on the filesystem; p99 pull latency during GC <= 2x idle;
no request refused.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import delete, func, insert, select, update

from benchmarks.servers import ADMIN_PASSWORD, ADMIN_USER, REGISTRY, CargobayServer
from cargobay.db.engine import make_engine
from cargobay.db.models import (
    Blob,
    GcBlobReview,
    GcRun,
    Manifest,
    ManifestBlob,
    Registry,
    Repository,
    RepositoryBlob,
    Tag,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
PER_REPOSITORY = 10  # manifests per repository
CHUNK = 5000  # rows per INSERT batch
PULL_SET = 50  # kept manifests the pullers choose from


class GcServer(CargobayServer):
    """``cargobay serve`` on a database URL of our choosing, collections with no grace period."""

    def __init__(self, base: Path, database_url: str | None) -> None:
        super().__init__(base, workers=1, encryption=False)
        self.database_url = database_url
        self.prepared = False

    def environment(self) -> dict[str, str]:
        env = super().environment()
        if self.database_url:
            env["CARGOBAY_DATABASE_URL"] = self.database_url
        env["CARGOBAY_GC_SWEEP_KEYS_PER_SECOND"] = "0"
        return env

    def prepare(self) -> None:
        if not self.prepared:  # ``start`` prepares too; the installation is made once, before seeding
            super().prepare()
            self.prepared = True

    def sqlalchemy_url(self) -> str:
        if self.database_url:
            return self.database_url.replace("postgresql://", "postgresql+psycopg://", 1)
        return f"sqlite:///{self.data_dir / 'cargobay.db'}"


@dataclass
class Seeded:
    blobs: int = 0
    manifests: int = 0
    garbage_blobs: int = 0
    garbage_bytes: int = 0
    seconds: float = 0.0
    pull_set: list[tuple[str, str, str]] = field(default_factory=list)  # repository, manifest, blob digest
    kept_keys: list[str] = field(default_factory=list)
    garbage_keys: list[str] = field(default_factory=list)


def _blob(i: int) -> bytes:
    return f"cargobay gc benchmark blob {i:08d}\n".encode() * 2


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def seed(server: GcServer, blobs: int, manifests: int) -> Seeded:
    """Rows straight into the tables (SQLAlchemy Core, either database) and a file per blob."""
    started = time.monotonic()
    engine = make_engine(server.sqlalchemy_url())
    objects = server.data_dir / "storage" / "objects"
    per_manifest = max(1, blobs // manifests)
    repositories = max(1, manifests // PER_REPOSITORY)
    now = datetime.datetime.now(datetime.UTC)
    long_ago = now - datetime.timedelta(days=2)
    out = Seeded()
    try:
        with engine.begin() as conn:
            registry_id = conn.scalar(select(Registry.id).where(Registry.name == REGISTRY))
            conn.execute(
                insert(Repository),
                [
                    {"registry_id": registry_id, "name": f"app/{r:05d}", "created_at": now}
                    for r in range(repositories)
                ],
            )
            repo_ids = dict(
                conn.execute(
                    select(Repository.name, Repository.id).where(Repository.registry_id == registry_id)
                ).all()
            )
        blob_rows: list[dict[str, Any]] = []
        total_bytes = 0
        for i in range(manifests * per_manifest):
            data = _blob(i)
            oid = uuid.uuid4().hex
            key = f"{registry_id}/blobs/{oid[:2]}/{oid}"
            path = objects / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
            blob_rows.append(
                {
                    "registry_id": registry_id,
                    "digest": _digest(data),
                    "size": len(data),
                    "object_key": key,
                    "created_at": long_ago,
                }
            )
            total_bytes += len(data)
        with engine.begin() as conn:
            for start in range(0, len(blob_rows), CHUNK):
                conn.execute(insert(Blob), blob_rows[start : start + CHUNK])
            blob_ids = dict(
                conn.execute(select(Blob.object_key, Blob.id).where(Blob.registry_id == registry_id)).all()
            )
            manifest_rows: list[dict[str, Any]] = []
            links: list[dict[str, Any]] = []
            tags: list[dict[str, Any]] = []
            repo_links: list[dict[str, Any]] = []
            manifest_bytes = 0
            for m in range(manifests):
                repo = f"app/{m // PER_REPOSITORY:05d}"
                own = blob_rows[m * per_manifest : (m + 1) * per_manifest]
                doc = {
                    "schemaVersion": 2,
                    "mediaType": OCI_MANIFEST,
                    "config": {
                        "mediaType": "application/vnd.oci.image.config.v1+json",
                        "digest": own[0]["digest"],
                        "size": own[0]["size"],
                    },
                    "layers": [
                        {
                            "mediaType": "application/vnd.oci.image.layer.v1.tar",
                            "digest": b["digest"],
                            "size": b["size"],
                        }
                        for b in own[1:]
                    ],
                }
                body = json.dumps(doc).encode()
                manifest_bytes += len(body)
                manifest_rows.append(
                    {
                        "registry_id": registry_id,
                        "repository_id": repo_ids[repo],
                        "digest": _digest(body),
                        "media_type": OCI_MANIFEST,
                        "size": len(body),
                        "body": body,
                        "created_at": long_ago,
                        "pushed_at": long_ago,
                        "push_count": 1,
                        "pull_count": 0,
                    }
                )
            for start in range(0, len(manifest_rows), CHUNK):
                conn.execute(insert(Manifest), manifest_rows[start : start + CHUNK])
            manifest_ids = dict(
                conn.execute(
                    select(Manifest.digest, Manifest.id).where(Manifest.registry_id == registry_id)
                ).all()
            )
            for m, row in enumerate(manifest_rows):
                mid = manifest_ids[row["digest"]]
                tags.append(
                    {
                        "repository_id": row["repository_id"],
                        "name": f"v{m % PER_REPOSITORY}",
                        "manifest_id": mid,
                        "updated_at": long_ago,
                    }
                )
                for b in blob_rows[m * per_manifest : (m + 1) * per_manifest]:
                    links.append({"manifest_id": mid, "blob_id": blob_ids[b["object_key"]]})
                    repo_links.append(
                        {
                            "repository_id": row["repository_id"],
                            "blob_id": blob_ids[b["object_key"]],
                            "created_at": long_ago,
                        }
                    )
            for table, rows in ((ManifestBlob, links), (Tag, tags), (RepositoryBlob, repo_links)):
                for start in range(0, len(rows), CHUNK):
                    conn.execute(insert(table), rows[start : start + CHUNK])
            conn.execute(
                update(Registry)
                .where(Registry.id == registry_id)
                .values(storage_bytes=total_bytes + manifest_bytes)
            )
        # A repository delete as the service makes it: the blobs queued for review, then the rows go.
        dropped = [repo_ids[f"app/{r:05d}"] for r in range(0, repositories, 2)]
        with engine.begin() as conn:
            garbage = conn.execute(
                select(Blob.id, Blob.size, Blob.object_key)
                .join(ManifestBlob, ManifestBlob.blob_id == Blob.id)
                .join(Manifest, Manifest.id == ManifestBlob.manifest_id)
                .where(Manifest.repository_id.in_(dropped))
            ).all()
            reviews = [{"blob_id": g[0], "registry_id": registry_id, "changed_at": long_ago} for g in garbage]
            for start in range(0, len(reviews), CHUNK):
                conn.execute(insert(GcBlobReview), reviews[start : start + CHUNK])
            freed_manifests = conn.scalar(
                select(func.coalesce(func.sum(Manifest.size), 0)).where(Manifest.repository_id.in_(dropped))
            )
            conn.execute(delete(Repository).where(Repository.id.in_(dropped)))
            conn.execute(
                update(Registry)
                .where(Registry.id == registry_id)
                .values(storage_bytes=Registry.storage_bytes - int(freed_manifests or 0))
            )
        garbage_keys = {g[2] for g in garbage}
        out.blobs, out.manifests = len(blob_rows), manifests
        out.garbage_blobs, out.garbage_bytes = len(garbage), sum(int(g[1]) for g in garbage)
        out.garbage_keys = sorted(garbage_keys)
        out.kept_keys = sorted(k for k in blob_ids if k not in garbage_keys)
        kept_manifests = [(m, row) for m, row in enumerate(manifest_rows) if (m // PER_REPOSITORY) % 2 == 1][
            :PULL_SET
        ]
        out.pull_set = [
            (
                f"{REGISTRY}/app/{m // PER_REPOSITORY:05d}",
                row["digest"],
                blob_rows[m * per_manifest]["digest"],
            )
            for m, row in kept_manifests
        ]
    finally:
        engine.dispose()
    out.seconds = time.monotonic() - started
    return out


@dataclass
class Latencies:
    samples: list[float] = field(default_factory=list)
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def summary(self) -> dict[str, float | int]:
        ordered = sorted(self.samples)
        if not ordered:
            return {"pulls": 0, "refused": self.refused}
        return {
            "pulls": len(ordered),
            "refused": self.refused,
            "p50_ms": round(statistics.median(ordered) * 1000, 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2),
        }


class Pullers:
    """Threads pulling a kept manifest and its first blob, each pull timed; ``phase`` picks the bucket."""

    def __init__(self, server: GcServer, pull_set: list[tuple[str, str, str]], count: int) -> None:
        self.server, self.pull_set, self.count = server, pull_set, count
        self.buckets = {"idle": Latencies(), "gc": Latencies()}
        self.phase: str | None = None
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True) for i in range(count)]

    def run(self, index: int) -> None:
        auth = (ADMIN_USER, ADMIN_PASSWORD)
        with httpx.Client(base_url=self.server.url, auth=auth, timeout=60) as http:
            i = index
            while not self.stop.is_set():
                repo, manifest, blob = self.pull_set[i % len(self.pull_set)]
                i += self.count
                phase = self.phase
                started = time.perf_counter()
                first = http.get(f"/v2/{repo}/manifests/{manifest}", headers={"Accept": OCI_MANIFEST})
                second = http.get(f"/v2/{repo}/blobs/{blob}")
                took = time.perf_counter() - started
                if phase is None:
                    continue
                bucket = self.buckets[phase]
                with bucket.lock:
                    if first.status_code == 200 and second.status_code == 200:
                        bucket.samples.append(took)
                    else:
                        bucket.refused += 1

    @contextlib.contextmanager
    def running(self) -> Iterator[Pullers]:
        for thread in self.threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in self.threads:
                thread.join(60)


def _gc_with_rss(server: GcServer) -> dict[str, Any]:
    """Run the collection and read its peak RSS from the kernel's accounting of the child."""
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child execs at once
        env = server.environment()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.execve(server.cargobay, [server.cargobay, "gc", "--registry", REGISTRY, "--grace", "0"], env)
    _pid, status, usage = os.wait4(pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"cargobay gc exited with {os.waitstatus_to_exitcode(status)}")
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def check_after(server: GcServer, seeded: Seeded) -> dict[str, Any]:
    objects = server.data_dir / "storage" / "objects"
    kept_missing = sum(1 for k in seeded.kept_keys if not (objects / k).exists())
    garbage_left = sum(1 for k in seeded.garbage_keys if (objects / k).exists())
    engine = make_engine(server.sqlalchemy_url())
    try:
        with engine.connect() as conn:
            runs = conn.execute(
                select(GcRun.blobs_freed, GcRun.bytes_freed, GcRun.started_at, GcRun.finished_at)
                .where(GcRun.state == "succeeded", GcRun.registry_id.is_not(None))
                .order_by(GcRun.id.desc())
            ).first()
    finally:
        engine.dispose()
    return {
        "kept_missing": kept_missing,
        "garbage_left": garbage_left,
        "blobs_freed": int(runs[0]) if runs else 0,
        "bytes_freed": int(runs[1]) if runs else 0,
        "run_seconds": round((runs[3] - runs[2]).total_seconds(), 2) if runs else None,
    }


def bench_one(label: str, base: Path, database_url: str | None, args: argparse.Namespace) -> dict[str, Any]:
    shutil.rmtree(base, ignore_errors=True)  # a fresh installation each time
    server = GcServer(base, database_url)
    server.base.mkdir(parents=True, exist_ok=True)
    server.data_dir.mkdir(parents=True, exist_ok=True)
    server.prepare()  # migrate, the registry
    seeded = seed(server, args.blobs, args.manifests)
    print(
        f"[{label}] seeded {seeded.blobs} blobs / {seeded.manifests} manifests in {seeded.seconds:.1f} s; "
        f"{seeded.garbage_blobs} blobs are garbage",
        flush=True,
    )
    server.start()
    try:
        pullers = Pullers(server, seeded.pull_set, args.pullers)
        with pullers.running():
            time.sleep(1)  # warm up
            pullers.phase = "idle"
            time.sleep(args.pull_seconds)
            pullers.phase = "gc"
            gc_result = _gc_with_rss(server)
            pullers.phase = None
    finally:
        server.stop()
    after = check_after(server, seeded)
    idle, during = pullers.buckets["idle"].summary(), pullers.buckets["gc"].summary()
    ratio = (
        round(float(during["p99_ms"]) / float(idle["p99_ms"]), 2)
        if "p99_ms" in idle and "p99_ms" in during
        else None
    )
    result = {
        "database": label,
        "blobs": seeded.blobs,
        "manifests": seeded.manifests,
        "garbage_blobs": seeded.garbage_blobs,
        "gc_seconds": gc_result["seconds"],
        "gc_peak_rss_mib": gc_result["peak_rss_mib"],
        "blobs_per_second": (
            round(after["blobs_freed"] / after["run_seconds"], 1) if after["run_seconds"] else None
        ),
        **after,
        "pull_idle": idle,
        "pull_during_gc": during,
        "p99_ratio": ratio,
    }
    print(json.dumps(result, indent=2), flush=True)
    if after["kept_missing"] or after["garbage_left"] or after["blobs_freed"] != seeded.garbage_blobs:
        raise SystemExit(f"[{label}] wrong collection: {after} (expected {seeded.garbage_blobs} freed)")
    return result


@contextlib.contextmanager
def postgres(url: str | None) -> Iterator[str]:
    if url:
        yield url
        return
    from tests.support.postgres import PostgresServer, find_binaries  # the suite's throw-away server

    bindir = find_binaries()
    if bindir is None:
        raise SystemExit("PostgreSQL binaries (initdb) not found: pass --pg-url")
    server = PostgresServer(bindir)
    server.start()
    try:
        yield server.url(server.create_database("gcbench"))
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gc", description=__doc__.split("\n")[0])
    parser.add_argument("--blobs", type=int, default=100_000)
    parser.add_argument("--manifests", type=int, default=10_000)
    parser.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--pg-url", default=None, help="an empty PostgreSQL database (else one is started)")
    parser.add_argument("--pull-seconds", type=float, default=10.0)
    parser.add_argument("--pullers", type=int, default=4)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cargobay-gc-bench-"))
    results = []
    for label in [d.strip() for d in args.db.split(",") if d.strip()]:
        if label == "sqlite":
            results.append(bench_one(label, workdir / label, None, args))
        elif label == "postgresql":
            with postgres(args.pg_url) as url:
                results.append(bench_one(label, workdir / label, url, args))
        else:
            parser.error(f"unknown database {label!r}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
