"""``python -m benchmarks.scaleout [--size-mib 16] [--streams 6] [--duration 10] [--only ...]``

Cargobay scaled out: blob push and pull throughput and the manifest GET rate with 1 and with 3 ``cargobay
serve`` processes on PostgreSQL + S3 (versitygw, the S3 server the tests use), next to the embedded
default (SQLite + filesystem, one process) and the reference registry (``registry-v3``, CNCF
distribution v3.1.1) with its ``s3`` driver on the same versitygw. Every server gets ``--workers 1``
per process and encryption off, so a process count is a core count.

The client load is spread round-robin over a subject's processes, as a load balancer would: ``streams``
concurrent blob pushes (the Go client of ``benchmarks/blobclient.py``, a distinct random blob each, then
pulled through the next process), and for the manifest GET rate one ``wrk`` per process, sharing the same
total of connections. On a 2-core machine shared with other work, 3 processes mostly show that nothing
breaks and what the database and S3 round trips cost; the ratio 3:1 needs as many free cores to mean
more. Results go to ``benchmarks/results/scaleout-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import random
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from benchmarks import loadgen
from benchmarks.blobclient import BlobClient, build
from benchmarks.servers import REGISTRY, CargobayServer, ReferenceRegistry, Server

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SUBJECTS = ("embedded", "scaleout-1", "scaleout-3", "reference-s3")
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@dataclass(frozen=True)
class Sample:
    subject: str
    metric: str  # "push MB/s", "pull MB/s", "manifest GET req/s"
    value: float
    detail: dict[str, Any]


# -- the shared database and bucket ---------------------------------------------------------------


@dataclass
class Backends:
    """A PostgreSQL server and a versitygw for the run (tests/support starts them the same way)."""

    database_url: Callable[[str], str]
    storage_url: Callable[[str], str]
    s3_endpoint: str
    s3_env: dict[str, str]
    s3_bucket: Callable[[str], str]


@contextmanager
def backends() -> Iterator[Backends]:
    from tests.support.postgres import PostgresServer, find_binaries
    from tests.support.s3 import S3Server, find_versitygw

    bindir, gateway = find_binaries(), find_versitygw()
    if bindir is None or gateway is None:
        raise RuntimeError("PostgreSQL and versitygw are needed (run `make peers`)")
    pg = PostgresServer(bindir).start()
    s3 = S3Server(gateway).start()
    try:
        yield Backends(
            database_url=lambda prefix: pg.url(pg.create_database(prefix)),
            storage_url=lambda bucket: s3.url(bucket, "registry"),
            s3_endpoint=s3.endpoint_url,
            s3_env=s3.env,
            s3_bucket=lambda prefix: s3.new_bucket(prefix),
        )
    finally:
        s3.stop()
        pg.stop()


class ScaledCargobay(CargobayServer):
    """One ``serve`` process of a scale-out deployment (the settings of tests/support/scaleout.py)."""

    def __init__(self, base: Path, shared: dict[str, str], first: bool) -> None:
        super().__init__(base, workers=1, encryption=False)
        self.shared = shared
        self.first = first

    def environment(self) -> dict[str, str]:
        return {**super().environment(), **self.shared}

    def prepare(self) -> None:
        if self.first:  # the first process migrates and makes the registry; the others find both
            super().prepare()


class S3Reference(ReferenceRegistry):
    """registry-v3 with its s3 driver on the run's versitygw."""

    def __init__(self, base: Path, endpoint: str, env: dict[str, str], bucket: str) -> None:
        super().__init__(base, "registry-v3")
        self.label = "CNCF distribution v3.1.1 (registry-v3, s3 driver)"
        self.endpoint, self.s3_env, self.bucket = endpoint, env, bucket

    def prepare(self) -> None:
        config = (
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            "storage:\n"
            "  s3:\n"
            f"    accesskey: {self.s3_env['AWS_ACCESS_KEY_ID']}\n"
            f"    secretkey: {self.s3_env['AWS_SECRET_ACCESS_KEY']}\n"
            "    region: us-east-1\n"
            f"    regionendpoint: {self.endpoint}\n"
            f"    bucket: {self.bucket}\n"
            "    rootdirectory: /registry\n"
            "    forcepathstyle: true\n"
            "    secure: false\n"
            "  delete:\n    enabled: true\n"
            "  cache:\n    blobdescriptor: inmemory\n"
            f"http:\n  addr: {self.host}\n  secret: cargobay-bench-secret\n"
        )
        (self.base / "config.yml").write_text(config)


@contextmanager
def subject(name: str, root: Path, back: Backends) -> Iterator[list[Server]]:
    """The processes of a subject, started; stopped and removed on exit."""
    with ExitStack() as stack:
        if name == "embedded":
            yield [stack.enter_context(CargobayServer(root / name, workers=1, encryption=False))]
            return
        if name == "reference-s3":
            server = S3Reference(root / name, back.s3_endpoint, back.s3_env, back.s3_bucket("reference"))
            yield [stack.enter_context(server)]
            return
        count = int(name.rsplit("-", 1)[1])
        shared = {
            "CARGOBAY_DATABASE_URL": back.database_url(name.replace("-", "_")),
            "CARGOBAY_STORAGE_URL": back.storage_url(back.s3_bucket(name)),
            "CARGOBAY_IN_PROCESS_JOBS": "false",
            **back.s3_env,
        }
        nodes = [ScaledCargobay(root / f"{name}-{i}", shared, first=i == 0) for i in range(count)]
        yield [stack.enter_context(node) for node in nodes]


# -- measurements ---------------------------------------------------------------------------------


def _authorization(server: Server, repository: str) -> str | None:
    return server.authorization(repository)


def _parallel(jobs: list[Callable[[], Any]]) -> tuple[float, list[Any]]:
    results: list[Any] = [None] * len(jobs)
    errors: list[BaseException] = []

    def run(i: int) -> None:
        try:
            results[i] = jobs[i]()
        except BaseException as exc:  # reported after the join
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started, results


def measure_blobs(
    name: str, servers: list[Server], client: BlobClient, work: Path, opts: Options
) -> list[Sample]:
    repo = f"{REGISTRY}/blobs/app"
    auths = [_authorization(s, repo) for s in servers]
    size = opts.size_mib * 1024 * 1024
    files: list[tuple[Path, str]] = []
    rng = random.Random(name)
    for i in range(opts.streams):
        path = work / f"{name}-blob-{i}"
        data = rng.randbytes(size)
        path.write_bytes(data)
        files.append((path, "sha256:" + hashlib.sha256(data).hexdigest()))
    n = len(servers)
    pushes = [
        (lambda i=i: client.push(servers[i % n].url, repo, files[i][0], files[i][1], "stream", auths[i % n]))
        for i in range(opts.streams)
    ]
    push_s, _ = _parallel(pushes)
    pulls = [
        (lambda i=i: client.pull(servers[(i + 1) % n].url, repo, files[i][1], size, auths[(i + 1) % n]))
        for i in range(opts.streams)
    ]
    pull_s, _ = _parallel(pulls)
    for path, _ in files:
        path.unlink()
    total = opts.streams * size
    detail = {"streams": opts.streams, "blob_bytes": size, "processes": n}
    return [
        Sample(name, "push MB/s", total / push_s / 1e6, {**detail, "seconds": push_s}),
        Sample(name, "pull MB/s", total / pull_s / 1e6, {**detail, "seconds": pull_s}),
    ]


def _put_manifest(server: Server, repo: str, authorization: str | None) -> str:
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    config_digest = "sha256:" + hashlib.sha256(config).hexdigest()
    headers = {"Authorization": authorization} if authorization else {}
    start = urllib.request.Request(f"{server.url}/v2/{repo}/blobs/uploads/", method="POST", headers=headers)
    with urllib.request.urlopen(start, timeout=60) as opened:  # POST, then PUT with the body
        location = urllib.parse.urljoin(server.url, opened.headers["Location"])
    separator = "&" if "?" in location else "?"
    blob = urllib.request.Request(
        f"{location}{separator}digest={config_digest}",
        data=config,
        method="PUT",
        headers={**headers, "Content-Type": "application/octet-stream"},
    )
    urllib.request.urlopen(blob, timeout=60).close()
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [],
        }
    ).encode()
    put = urllib.request.Request(
        f"{server.url}/v2/{repo}/manifests/v1",
        data=manifest,
        method="PUT",
        headers={**headers, "Content-Type": OCI_MANIFEST},
    )
    try:
        urllib.request.urlopen(put, timeout=60).close()
    except urllib.error.HTTPError as exc:
        raise RuntimeError(f"manifest PUT to {server.label}: {exc.code} {exc.read()[:500]!r}") from None
    return "v1"


def measure_manifest_gets(name: str, servers: list[Server], opts: Options) -> list[Sample]:
    repo = f"{REGISTRY}/manifests/app"
    auths = [_authorization(s, repo) for s in servers]
    tag = _put_manifest(servers[0], repo, auths[0])
    per_process = max(1, opts.connections // len(servers))

    def load(i: int) -> loadgen.LoadResult:
        headers = {"Accept": OCI_MANIFEST}
        if auths[i]:
            headers["Authorization"] = str(auths[i])
        url = f"{servers[i].url}/v2/{repo}/manifests/{tag}"
        return loadgen.run(url, headers, opts.duration, connections=per_process)

    _, results = _parallel([lambda i=i: load(i) for i in range(len(servers))])
    rate = sum(r.requests_per_s for r in results)
    bad = sum(r.non_2xx + r.socket_errors for r in results)
    detail = {
        "processes": len(servers),
        "connections": per_process * len(servers),
        "p50_ms": max(r.p50_ms for r in results),
        "p99_ms": max(r.p99_ms for r in results),
        "errors": bad,
        "seconds": opts.duration,
    }
    return [Sample(name, "manifest GET req/s", rate, detail)]


# -- the run ----------------------------------------------------------------------------------------


@dataclass
class Options:
    size_mib: int = 16
    streams: int = 6
    duration: float = 10.0
    connections: int = 30
    subjects: tuple[str, ...] = SUBJECTS
    output: Path | None = None


def run(opts: Options) -> list[Sample]:
    client = BlobClient(build())
    samples: list[Sample] = []
    with tempfile.TemporaryDirectory(prefix="cargobay-scaleout-bench-") as tmp, backends() as back:
        root = Path(tmp)
        for name in opts.subjects:
            print(f"== {name}", flush=True)
            with subject(name, root, back) as servers:
                for sample in [
                    *measure_blobs(name, servers, client, root, opts),
                    *measure_manifest_gets(name, servers, opts),
                ]:
                    samples.append(sample)
                    print(f"   {sample.metric:<20} {sample.value:10.1f}", flush=True)
    return samples


def report(samples: list[Sample]) -> str:
    metrics = list(dict.fromkeys(s.metric for s in samples))
    subjects = list(dict.fromkeys(s.subject for s in samples))
    value = {(s.subject, s.metric): s.value for s in samples}
    lines = [f"{'':<22}" + "".join(f"{m:>22}" for m in metrics)]
    for name in subjects:
        lines.append(f"{name:<22}" + "".join(f"{value.get((name, m), float('nan')):>22.1f}" for m in metrics))
    if "scaleout-1" in subjects:
        for name in subjects:
            ratios = [
                value[(name, m)] / value[("scaleout-1", m)] for m in metrics if value.get(("scaleout-1", m))
            ]
            lines.append(f"{name + ' / scaleout-1':<22}" + "".join(f"{r:>22.2f}" for r in ratios))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.scaleout", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--size-mib", type=int, default=16, help="bytes of each pushed blob, in MiB")
    parser.add_argument("--streams", type=int, default=6, help="concurrent pushes (then pulls)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of manifest GET load")
    parser.add_argument("--connections", type=int, default=30, help="wrk connections in all")
    parser.add_argument("--only", default=",".join(SUBJECTS), help=f"subjects among {','.join(SUBJECTS)}")
    parser.add_argument("--output", type=Path, help="JSON results file")
    args = parser.parse_args(argv)
    subjects = tuple(s for s in args.only.split(",") if s)
    unknown = set(subjects) - set(SUBJECTS)
    if unknown:
        parser.error(f"unknown subjects: {', '.join(sorted(unknown))}")
    opts = Options(args.size_mib, args.streams, args.duration, args.connections, subjects, args.output)
    samples = run(opts)
    print(report(samples))
    output = (
        opts.output or RESULTS_DIR / f"scaleout-{datetime.datetime.now(datetime.UTC):%Y%m%dT%H%M%SZ}.json"
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(
        json.dumps(
            {
                "options": {k: str(v) if isinstance(v, Path) else v for k, v in asdict(opts).items()},
                "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load": os.getloadavg()},
                "samples": [asdict(s) for s in samples],
            },
            indent=2,
        )
    )
    print(f"results: {output}")


if __name__ == "__main__":
    main()
