"""Garbage-collection benchmark: collect 100,000 blobs / 10,000 manifests on SQLite and PostgreSQL,
with the blobs in the filesystem store and in S3, while clients pull and push.

    .venv/bin/python -m benchmarks.gc [--blobs 100000] [--manifests 10000] [--db sqlite,postgresql]
                                      [--storage filesystem,s3] [--runner cli,job]
                                      [--pg-url postgresql://…]
                                      [--idle-seconds 10] [--pullers 4] [--pushers 2]
                                      [--push-bytes 65536] [--grace 3600] [--workdir DIR] [--json FILE]

For each database and store, a fresh installation (``cargobay migrate``, encryption off) is seeded
straight into its tables: ``--manifests`` tagged manifests in repositories of ten, each naming
``blobs / manifests`` blobs of its own, every blob a small object in the store (its content matches its
digest). Then half of the repositories are deleted as a repository delete leaves them (rows gone,
blobs queued for review, changed two days ago): half the blobs are garbage. PostgreSQL is the one
at ``--pg-url``, else a throw-away server started from the test suite's helper (needs ``initdb``).
S3 is a versitygw started from the test suite's helper (``tests/support/s3.py``) for each run; its
posix backend keeps an object as the file ``{bucket}/{key}``, and the seed writes those files (a
PUT each would take minutes). Either store's objects are synced to disk before the run: a delete of
a file still in the page cache only is far cheaper than a real one.

The bench registry does not scan (its backlog of scan jobs would run during the measurement), and
the jobs a fresh server starts with (the first sweep of the whole store among them) are waited for.
Then ``--pullers`` threads pull a kept manifest and one of its blobs, and ``--pushers`` threads push
a two-blob image (``benchmarks/traffic.py``), in a loop: ``--idle-seconds`` idle, then while the
collection runs (sweep unpaced): with ``--runner cli`` it is ``cargobay gc --registry bench --grace
GRACE`` in a process of its own; with ``--runner job`` the management API is asked for a run, which
the server's in-process worker runs as the default deployment's scheduled runs go (in a child
process of the server: ``CARGOBAY_GC_IN_CHILD_PROCESS``); ``--runner inline`` is that with the run
inside the one serving process, beside its requests. The seeded garbage changed two days ago, so any
grace under that collects all of it; the default (an hour) keeps what the pushers upload in the
meantime out of the run, as the production default (24 h) does. Reported: the collection's wall time
(the cli process's start included) and the cli process's peak RSS, the run's own time (from its
row), blobs and bytes freed, blobs freed per second of the run and of its ``blobs`` phase (the
phase's bounds are read from the run's row, written about once a second), the sweep's time, pull and
push p50/p99/max idle and during GC, their p99 ratios, refused operations (any unexpected status or
a failed request), and the load average after each phase. Afterwards it checks that every kept blob
is still stored and every garbage blob gone.

Targets (issue 13): 100,000 blobs in <= 60 s on the filesystem; p99 pull latency during GC <= 2x idle;
no request refused or blocked for GC.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from sqlalchemy import delete, func, insert, select, update

from benchmarks.servers import ADMIN_PASSWORD, ADMIN_USER, REGISTRY, CargobayServer
from benchmarks.traffic import Traffic
from cargobay.db.engine import make_engine
from cargobay.db.models import (
    Blob,
    GcBlobReview,
    GcRun,
    Job,
    Manifest,
    ManifestBlob,
    Registry,
    Repository,
    RepositoryBlob,
    Tag,
)
from cargobay.db.types import utcnow

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
S3_PREFIX = "registry"  # the key prefix of the installation's objects in its bucket
PER_REPOSITORY = 10  # manifests per repository
CHUNK = 5000  # rows per INSERT batch
PULL_SET = 50  # kept manifests the pullers choose from
DATABASES = ("sqlite", "postgresql")
STORES = ("filesystem", "s3")
RUNNERS = ("cli", "job", "inline")


class Objects(Protocol):
    """Where the installation's objects are, as the seed writes them and the check reads them."""

    label: str
    storage_url: str | None  # CARGOBAY_STORAGE_URL; None: the filesystem store in the data dir
    environment: dict[str, str]  # what the server needs to reach the store

    def write(self, key: str, data: bytes) -> None: ...

    def stored(self, prefix: str) -> set[str]:
        """The keys stored under ``prefix``."""
        ...


class FileObjects:
    label = "filesystem"

    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "storage" / "objects"
        self.storage_url: str | None = None
        self.environment: dict[str, str] = {}

    def write(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def stored(self, prefix: str) -> set[str]:
        base = self.root / prefix
        return {
            str((Path(top) / name).relative_to(self.root))
            for top, _dirs, files in os.walk(base)
            for name in files
        }


class S3Objects:
    """A bucket of a versitygw of our own: the seed writes its posix backend's files, the check lists
    the bucket through the S3 API."""

    label = "s3"

    def __init__(self, s3: Any) -> None:  # tests.support.s3.S3Server
        bucket = s3.new_bucket("gcbench")
        self.storage_url: str | None = s3.url(bucket, S3_PREFIX)
        self.environment: dict[str, str] = dict(s3.env)
        self.root = Path(s3.root) / "data" / bucket / S3_PREFIX
        self.bucket, self.endpoint_url = bucket, str(s3.endpoint_url)

    def write(self, key: str, data: bytes) -> None:
        path = self.root / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)

    def stored(self, prefix: str) -> set[str]:
        import boto3
        from botocore.config import Config

        client = boto3.session.Session(
            aws_access_key_id=self.environment["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.environment["AWS_SECRET_ACCESS_KEY"],
        ).client(
            "s3",
            endpoint_url=self.endpoint_url,
            config=Config(region_name="us-east-1", s3={"addressing_style": "path"}),
        )
        pages = client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=f"{S3_PREFIX}/{prefix}"
        )
        return {item["Key"][len(S3_PREFIX) + 1 :] for page in pages for item in page.get("Contents", [])}


class GcServer(CargobayServer):
    """``cargobay serve`` on a database URL and a store of our choosing, its sweeps unpaced."""

    def __init__(
        self, base: Path, database_url: str | None, s3: Any | None, grace: int, inline: bool = False
    ) -> None:
        super().__init__(base, workers=1, encryption=False)
        self.database_url = database_url
        self.grace = grace
        self.inline = inline
        self.objects: Objects = S3Objects(s3) if s3 is not None else FileObjects(self.data_dir)
        self.prepared = False

    def environment(self) -> dict[str, str]:
        env = super().environment()
        if self.database_url:
            env["CARGOBAY_DATABASE_URL"] = self.database_url
        if self.objects.storage_url:
            env["CARGOBAY_STORAGE_URL"] = self.objects.storage_url
        env.update(self.objects.environment)
        env["CARGOBAY_GC_SWEEP_KEYS_PER_SECOND"] = "0"
        env["CARGOBAY_GC_GRACE_SECONDS"] = str(self.grace)  # of runs the API asks for
        if self.inline:
            env["CARGOBAY_GC_IN_CHILD_PROCESS"] = "false"
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
    registry_id: str = ""
    pull_set: list[tuple[str, str, str]] = field(default_factory=list)  # repository, manifest, blob digest
    kept_keys: list[str] = field(default_factory=list)
    garbage_keys: list[str] = field(default_factory=list)


def _blob(i: int) -> bytes:
    return f"cargobay gc benchmark blob {i:08d}\n".encode() * 2


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def seed(server: GcServer, blobs: int, manifests: int) -> Seeded:
    """Rows straight into the tables (SQLAlchemy Core, either database) and an object per blob."""
    started = time.monotonic()
    engine = make_engine(server.sqlalchemy_url())
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
            server.objects.write(key, data)
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
                .values(storage_bytes=total_bytes + manifest_bytes, vulnerability_scanning=False)
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
        out.registry_id = str(registry_id)
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
    os.sync()  # see the module docstring
    out.seconds = time.monotonic() - started
    return out


class PhaseWatch:
    """Reads the newest run's row every ``every`` seconds: when each phase was first seen and when the
    run ended (the row is written about once a second, so a phase's bounds are that precise)."""

    def __init__(self, server: GcServer, every: float = 0.25) -> None:
        self.url, self.every = server.sqlalchemy_url(), every
        self.seen: dict[str, float] = {}
        self.ended: float | None = None
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _watch(self) -> None:
        engine = make_engine(self.url)
        try:
            while not self.stop.wait(self.every) and self.ended is None:
                with engine.connect() as conn:
                    row = conn.execute(
                        select(GcRun.state, GcRun.phase).order_by(GcRun.id.desc()).limit(1)
                    ).first()
                if row is None:
                    continue
                if row.state == "running" and row.phase is not None:
                    self.seen.setdefault(str(row.phase), time.monotonic())
                elif row.state in ("succeeded", "failed") and self.seen:
                    self.ended = time.monotonic()
        finally:
            engine.dispose()

    @contextlib.contextmanager
    def running(self) -> Iterator[PhaseWatch]:
        self.thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            self.thread.join(10)
            if self.ended is None and self.seen:  # the run's end seen by its caller first
                self.ended = time.monotonic()

    def seconds(self, phase: str) -> float | None:
        """From the first sight of ``phase`` to that of the next phase seen (or the run's end)."""
        if phase not in self.seen or self.ended is None:
            return None
        later = [t for t in self.seen.values() if t > self.seen[phase]]
        return round(min(later, default=self.ended) - self.seen[phase], 1)


def settle(server: GcServer, timeout: float = 600) -> float:
    """Wait until the jobs a fresh start runs (the first sweep of the whole store among them) are done,
    so that they are timed neither as idle nor as GC; returns the seconds waited."""
    started = time.monotonic()
    engine = make_engine(server.sqlalchemy_url())
    try:
        while time.monotonic() - started < timeout:
            queued_due = (Job.status == "queued") & (Job.run_at <= utcnow())
            with engine.connect() as conn:
                started_any = conn.scalar(select(func.count()).select_from(Job))
                busy = conn.scalar(select(func.count()).where((Job.status == "running") | queued_due))
            if started_any and not busy:
                break
            time.sleep(0.5)
    finally:
        engine.dispose()
    return round(time.monotonic() - started, 1)


def _gc_with_rss(server: GcServer, grace: int) -> dict[str, Any]:
    """Run the collection and read its peak RSS from the kernel's accounting of the child."""
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child execs at once
        env = server.environment()
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)  # the progress bar
        command = [server.cargobay, "gc", "--registry", REGISTRY, "--grace", str(grace)]
        os.execve(server.cargobay, command, env)
    _pid, status, usage = os.wait4(pid, 0)
    seconds = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"cargobay gc exited with {os.waitstatus_to_exitcode(status)}")
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(usage.ru_maxrss / 1024, 1)}


def _gc_by_job(server: GcServer, registry_id: str) -> dict[str, Any]:
    """Ask the management API for a run and wait for it: a job the server runs in its own process."""
    started = time.monotonic()
    auth = (ADMIN_USER, ADMIN_PASSWORD)
    with httpx.Client(base_url=f"{server.url}/containerregistries", auth=auth, timeout=60) as http:
        asked = http.post(f"/registries/{registry_id}/garbageCollection/runs")
        if asked.status_code != 202:
            raise RuntimeError(f"the run was not queued: {asked.status_code} {asked.text}")
        while (state := http.get(asked.headers["location"]).json()["properties"]["state"]) not in (
            "succeeded",
            "failed",
        ):
            time.sleep(0.5)
    if state != "succeeded":
        raise RuntimeError("the run failed (see the server's log)")
    return {"seconds": round(time.monotonic() - started, 2), "peak_rss_mib": None}


def check_after(server: GcServer, seeded: Seeded) -> dict[str, Any]:
    stored = server.objects.stored(f"{seeded.registry_id}/blobs/")
    kept_missing = sum(1 for k in seeded.kept_keys if k not in stored)
    garbage_left = sum(1 for k in seeded.garbage_keys if k in stored)
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
    took = runs[3] - runs[2] if runs and runs[2] and runs[3] else None
    return {
        "kept_missing": kept_missing,
        "garbage_left": garbage_left,
        "blobs_freed": int(runs[0]) if runs else 0,
        "bytes_freed": int(runs[1]) if runs else 0,
        "run_seconds": round(took.total_seconds(), 2) if took else None,
    }


def _ratio(during: dict[str, Any], idle: dict[str, Any]) -> float | None:
    if "p99_ms" in idle and "p99_ms" in during:
        return round(float(during["p99_ms"]) / float(idle["p99_ms"]), 2)
    return None


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def bench_one(
    database: str,
    runner: str,
    base: Path,
    database_url: str | None,
    s3: Any | None,
    args: argparse.Namespace,
) -> dict[str, Any]:
    shutil.rmtree(base, ignore_errors=True)  # a fresh installation each time
    server = GcServer(base, database_url, s3, args.grace, inline=runner == "inline")
    label = f"{database}, {server.objects.label}, {runner}"
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
    settled = settle(server)
    traffic = Traffic(
        server.url,
        (ADMIN_USER, ADMIN_PASSWORD),
        REGISTRY,
        seeded.pull_set,
        pullers=args.pullers,
        pushers=args.pushers,
        push_bytes=args.push_bytes,
    )
    watch = PhaseWatch(server)
    try:
        with traffic.running():
            time.sleep(2)  # warm up
            traffic.phase = "idle"
            time.sleep(args.idle_seconds)
            load_idle = _load()
            traffic.phase = "gc"
            with watch.running():
                if runner == "cli":
                    gc_result = _gc_with_rss(server, args.grace)
                else:
                    gc_result = _gc_by_job(server, seeded.registry_id)
            traffic.phase = None
            load_gc = _load()
    finally:
        server.stop()
    after = check_after(server, seeded)
    blobs_phase = watch.seconds("blobs")
    result: dict[str, Any] = {
        "database": database,
        "storage": server.objects.label,
        "runner": runner,
        "blobs": seeded.blobs,
        "manifests": seeded.manifests,
        "garbage_blobs": seeded.garbage_blobs,
        "grace_seconds": args.grace,
        "gc_seconds": gc_result["seconds"],
        "gc_peak_rss_mib": gc_result["peak_rss_mib"],
        "blobs_per_second": (
            round(after["blobs_freed"] / after["run_seconds"], 1) if after["run_seconds"] else None
        ),
        "blobs_phase_seconds": blobs_phase,
        "blobs_phase_per_second": round(after["blobs_freed"] / blobs_phase, 1) if blobs_phase else None,
        "sweep_seconds": watch.seconds("sweep"),
        **after,
        "startup_jobs_seconds": settled,
        "load_idle": load_idle,
        "load_gc": load_gc,
    }
    for kind in ("pull", "push"):
        idle, during = traffic.summary(kind, "idle"), traffic.summary(kind, "gc")
        result[f"{kind}_idle"], result[f"{kind}_during_gc"] = idle, during
        result[f"{kind}_p99_ratio"] = _ratio(during, idle)
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


@contextlib.contextmanager
def s3_server(storage: str) -> Iterator[Any]:
    """None for the filesystem; a versitygw of our own for S3 (the suite's helper)."""
    if storage == "filesystem":
        yield None
        return
    from tests.support.s3 import S3Server, find_versitygw

    binary = find_versitygw()
    if binary is None:
        raise SystemExit("versitygw not found (make peers-test; CARGOBAY_CACHE_DIR names the cache)")
    server = S3Server(binary).start()
    try:
        yield server
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gc", description=__doc__.split("\n")[0])
    parser.add_argument("--blobs", type=int, default=100_000)
    parser.add_argument("--manifests", type=int, default=10_000)
    parser.add_argument("--db", default="sqlite,postgresql", help="comma-separated: sqlite, postgresql")
    parser.add_argument("--storage", default="filesystem,s3", help="comma-separated: filesystem, s3")
    parser.add_argument(
        "--runner",
        default="cli",
        help="comma-separated: cli (`cargobay gc`), job (asked of the API), "
        "inline (a job in the serving process)",
    )
    parser.add_argument("--pg-url", default=None, help="an empty PostgreSQL database (else one is started)")
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="traffic timed before the run")
    parser.add_argument("--pullers", type=int, default=4)
    parser.add_argument("--pushers", type=int, default=2)
    parser.add_argument("--push-bytes", type=int, default=64 * 1024, help="each pushed layer's size")
    parser.add_argument("--grace", type=int, default=3600, help="the run's --grace (see above)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", type=Path, default=None, help="write the results here")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="cargobay-gc-bench-"))
    databases = [d.strip() for d in args.db.split(",") if d.strip()]
    stores = [s.strip() for s in args.storage.split(",") if s.strip()]
    runners = [r.strip() for r in args.runner.split(",") if r.strip()]
    for chosen, known in ((databases, DATABASES), (stores, STORES), (runners, RUNNERS)):
        for value in chosen:
            if value not in known:
                parser.error(f"unknown {value!r}: one of {', '.join(known)}")
    results = []
    for storage in stores:
        for database in databases:
            for runner in runners:
                base = workdir / f"{database}-{storage}-{runner}"
                with s3_server(storage) as s3:
                    if database == "sqlite":
                        results.append(bench_one(database, runner, base, None, s3, args))
                    else:
                        with postgres(args.pg_url) as url:
                            results.append(bench_one(database, runner, base, url, s3, args))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
