"""The measurements: 1 GiB blob push/pull (+ peak RSS), 200-layer image, manifest GET, encryption
(+ the latency of small requests to the same server while a pull runs).

Every measurement starts its server fresh, and each repeat alternates which server goes first, so
slow drift of the shared machine does not favour one side. Before each timed upload the page cache
is flushed to disk (``os.sync``) so one run's writeback does not land in the next one's time.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import statistics
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from benchmarks import loadgen
from benchmarks.blobclient import BlobClient, Transfer
from benchmarks.data import OCI_MANIFEST, Blob, Image
from benchmarks.procstats import RssSampler, cpu_seconds
from benchmarks.results import (
    CARGOBAY,
    CARGOBAY_DEFAULT,
    CARGOBAY_DEFAULT_BASIC,
    CARGOBAY_ENC_OFF,
    CARGOBAY_ENC_ON,
    CARGOBAY_W2,
    CEILING,
    REFERENCE,
    REFERENCE_HTPASSWD,
    Results,
)
from benchmarks.servers import (
    REGISTRY,
    CargobayServer,
    CeilingServer,
    ReferenceRegistry,
    Server,
    find_binary,
)

GIB = 1024**3
# stream: POST, one chunked PATCH, PUT ?digest= (docker's way); put: POST, PUT ?digest= with the body
# (monolithic); post: a single POST ?digest= with the body, which distribution does not implement.
PUSH_MODES = ("stream", "put", "post")
REFERENCE_PUSH_MODES = ("stream", "put")


@dataclass
class Options:
    size: int
    repeats: int
    reference: str
    layers: int
    layer_min: int
    layer_max: int
    jobs: int
    get_seconds: float
    warmup_seconds: float
    connections: int
    crane: bool
    log: Callable[[str], None]


def rotate(items: list[str], repeat: int) -> list[str]:
    """The subjects in a different order each repeat."""
    k = repeat % len(items)
    return items[k:] + items[:k]


class Bench:
    def __init__(self, options: Options, workdir: Path, client: BlobClient, results: Results) -> None:
        self.o = options
        self.workdir = workdir
        self.client = client
        self.results = results
        self._count = 0

    # -- servers ---------------------------------------------------------------------------------
    def _base(self, label: str) -> Path:
        self._count += 1
        return self.workdir / "servers" / f"{self._count:03d}-{label.replace(' ', '-').replace('=', '')}"

    def make(self, subject: str) -> Server:
        base = self._base(subject)
        if subject in (CARGOBAY, CARGOBAY_ENC_OFF):
            return CargobayServer(base, workers=1, encryption=False)
        if subject == CARGOBAY_ENC_ON:
            return CargobayServer(base, workers=1, encryption=True)
        if subject == CARGOBAY_W2:
            return CargobayServer(base, workers=2, encryption=False)
        if subject == CARGOBAY_DEFAULT:
            return CargobayServer(base, workers=None, encryption=None)
        if subject == REFERENCE:
            return ReferenceRegistry(base, self.o.reference)
        if subject == REFERENCE_HTPASSWD:
            return ReferenceRegistry(base, self.o.reference, htpasswd=True)
        raise ValueError(subject)

    @contextmanager
    def server(self, subject: str) -> Iterator[Server]:
        server = self.make(subject)
        try:
            yield server.start()
        finally:
            server.remove()

    @staticmethod
    def repo(server: Server, name: str) -> str:
        """Cargobay names the registry in the first path segment; the reference takes any name."""
        return f"{REGISTRY}/{name}"

    # -- 1 GiB blob ------------------------------------------------------------------------------
    def blob(self, blob: Blob, pull: bool = True) -> None:
        """Push ``blob`` in each mode to a fresh server and pull it back; peak RSS and server CPU."""
        section = "blob"
        for repeat in range(self.o.repeats):
            for subject in rotate([CARGOBAY, REFERENCE], repeat):
                for mode in PUSH_MODES if subject == CARGOBAY else REFERENCE_PUSH_MODES:
                    with self.server(subject) as server:
                        self._push_pull(server, subject, section, repeat, blob, mode, pull)
            self._ceiling(blob, repeat)

    def _push_pull(
        self, server: Server, subject: str, section: str, repeat: int, blob: Blob, mode: str, pull: bool
    ) -> tuple[Transfer, Transfer | None]:
        repo = self.repo(server, f"big-{mode}")
        os.sync()
        with RssSampler(server.pid) as sampler:
            cpu0 = cpu_seconds(server.pid)
            pushed = self.client.push(
                server.url, repo, blob.path, blob.digest, mode, server.authorization(repo)
            )
            cpu1 = cpu_seconds(server.pid)
            pulled = None
            if pull:
                pulled = self.client.pull(
                    server.url, repo, blob.digest, blob.size, server.authorization(repo)
                )
            cpu2 = cpu_seconds(server.pid)
        memory = sampler.result()
        gib = blob.size / GIB
        add = self.results.add
        add(
            section,
            f"push {mode}",
            subject,
            repeat,
            pushed.mb_per_s,
            "MB/s",
            seconds=pushed.seconds,
            phases=pushed.phases,
        )
        if "PUT" in pushed.phases and mode != "put":
            add(section, f"push {mode} finish (PUT)", subject, repeat, pushed.phases["PUT"], "s")
        add(section, f"push {mode} server CPU", subject, repeat, (cpu1 - cpu0) / gib, "CPU-s/GiB")
        if pulled is not None:
            add(section, "pull", subject, repeat, pulled.mb_per_s, "MB/s", seconds=pulled.seconds, after=mode)
            add(section, "pull server CPU", subject, repeat, (cpu2 - cpu1) / gib, "CPU-s/GiB", after=mode)
        add(section, "peak RSS", subject, repeat, memory.peak_mib, "MiB", mode=mode, **memory.__dict__)
        self.o.log(
            f"  {subject:<22} {mode:<6} push {pushed.mb_per_s:7.1f} MB/s"
            + f" ({' '.join(f'{k} {v:.2f}s' for k, v in sorted(pushed.phases.items()))})"
            + (f"  pull {pulled.mb_per_s:7.1f} MB/s" if pulled else "")
            + f"  peak RSS {memory.peak_mib:6.1f} MiB (idle {memory.baseline_tree_rss_mib:.1f})"
        )
        return pushed, pulled

    def _ceiling(self, blob: Blob, repeat: int) -> None:
        """What the client and loopback manage against a server that does no registry work."""
        server = CeilingServer(self._base("ceiling"), self.client.binary, blob.path)
        with server:
            for mode in PUSH_MODES:
                pushed = self.client.push(server.url, "sink/blob", blob.path, blob.digest, mode, None)
                self.results.add("blob", f"push {mode}", CEILING, repeat, pushed.mb_per_s, "MB/s")
            pulled = self.client.pull(server.url, "sink/blob", blob.digest, blob.size, None)
            self.results.add("blob", "pull", CEILING, repeat, pulled.mb_per_s, "MB/s")
        self.o.log(f"  {CEILING:<22} push {pushed.mb_per_s:7.1f} MB/s  pull {pulled.mb_per_s:7.1f} MB/s")

    # -- encryption ------------------------------------------------------------------------------
    def encryption(self, blob: Blob) -> None:
        section = "encryption"
        for repeat in range(self.o.repeats):
            for subject in rotate([CARGOBAY_ENC_OFF, CARGOBAY_ENC_ON, REFERENCE], repeat):
                with self.server(subject) as server:
                    pushed, pulled = self._push_pull(server, subject, section, repeat, blob, "stream", True)
                    assert pulled is not None
                    add = self.results.add
                    add(section, "push wall time", subject, repeat, pushed.seconds, "s")
                    add(section, "pull wall time", subject, repeat, pulled.seconds, "s")
                    if subject == CARGOBAY_ENC_ON:
                        plain = stored_in_plaintext(server.data_dir, blob)
                        add(section, "blob stored in plaintext", subject, repeat, float(plain), "bool")
                        self.o.log(f"  stored blob readable as plaintext: {plain}")
                    self._latency_during_pull(server, subject, section, repeat, blob)

    def _latency_during_pull(
        self, server: Server, subject: str, section: str, repeat: int, blob: Blob
    ) -> None:
        """``GET /v2/`` every 5 ms on one connection, while the server is idle and during a pull.

        Where the server does a pull's work on its event loop, this is what its other requests pay.
        """
        repo = self.repo(server, "big-stream")
        auth = server.authorization(repo)
        idle = probe_latency(server.url, auth, lambda: False, requests=100)
        done = threading.Event()

        def pull() -> None:
            try:
                self.client.pull(server.url, repo, blob.digest, blob.size, auth)
            finally:
                done.set()

        puller = threading.Thread(target=pull)
        puller.start()
        try:
            busy = probe_latency(server.url, auth, done.is_set)
        finally:
            puller.join()
        add = self.results.add
        for label, sample in (("idle", idle), ("during a pull", busy)):
            add(section, f"GET /v2/ p50 latency, {label}", subject, repeat, sample.p50, "ms")
            add(section, f"GET /v2/ p99 latency, {label}", subject, repeat, sample.p99, "ms")
        add(section, "GET /v2/ max latency, during a pull", subject, repeat, busy.max, "ms")
        self.o.log(
            f"  GET /v2/ idle p50 {idle.p50:.2f} p99 {idle.p99:.2f} ms; during a pull p50 {busy.p50:.2f}"
            f" p99 {busy.p99:.2f} max {busy.max:.2f} ms ({busy.count} requests)"
        )

    # -- 200-layer image -------------------------------------------------------------------------
    def layers(self, image: Image) -> None:
        section = "layers"
        crane = find_binary("crane", "CARGOBAY_CRANE") if self.o.crane else None
        for repeat in range(self.o.repeats):
            for subject in rotate([CARGOBAY, REFERENCE], repeat):
                with self.server(subject) as server:
                    repo = self.repo(server, "image")
                    os.sync()
                    pushed = self.client.push_image(
                        server.url, repo, image.directory, "v1", self.o.jobs, server.authorization(repo)
                    )
                    pulled = self.client.pull_image(
                        server.url, repo, "v1", self.o.jobs, server.authorization(repo)
                    )
                add = self.results.add
                add(section, "push wall time", subject, repeat, pushed.seconds, "s", requests=pushed.requests)
                add(section, "pull wall time", subject, repeat, pulled.seconds, "s", requests=pulled.requests)
                add(section, "push requests/s", subject, repeat, pushed.requests / pushed.seconds, "req/s")
                self.o.log(
                    f"  {subject:<22} blobbench push {pushed.seconds:6.2f} s ({pushed.requests} requests)"
                    f"  pull {pulled.seconds:6.2f} s"
                )
                if crane is not None:
                    with self.server(subject) as server:
                        push_s, pull_s = self._crane(crane, server, image)
                    add(section, "push wall time (crane)", subject, repeat, push_s, "s")
                    add(section, "pull wall time (crane)", subject, repeat, pull_s, "s")
                    self.o.log(f"  {subject:<22} crane     push {push_s:6.2f} s  pull {pull_s:6.2f} s")

    def _crane(self, crane: str, server: Server, image: Image) -> tuple[float, float]:
        """crane push of the OCI layout and crane pull --format oci; crane does its own auth flow."""
        config = server.base / "docker-config"
        config.mkdir(exist_ok=True)
        auths = {}
        if isinstance(server, CargobayServer):
            auths[server.host] = {"auth": server.basic_authorization().split(" ", 1)[1]}
        (config / "config.json").write_text(json.dumps({"auths": auths}))
        env = {**os.environ, "DOCKER_CONFIG": str(config)}
        ref = f"{server.host}/{self.repo(server, 'crane')}:v1"
        os.sync()
        started = time.monotonic()
        subprocess.run(
            [crane, "push", "--insecure", str(image.directory), ref],
            env=env,
            check=True,
            capture_output=True,
            timeout=1800,
        )
        push_s = time.monotonic() - started
        out = server.base / "pulled"
        started = time.monotonic()
        subprocess.run(
            [crane, "pull", "--insecure", "--format", "oci", ref, str(out)],
            env=env,
            check=True,
            capture_output=True,
            timeout=1800,
        )
        pull_s = time.monotonic() - started
        shutil.rmtree(out, ignore_errors=True)
        return push_s, pull_s

    # -- manifest GET ----------------------------------------------------------------------------
    def manifest_get(self, image: Image) -> None:
        section = "get"
        subjects = [CARGOBAY, CARGOBAY_W2, REFERENCE, REFERENCE_HTPASSWD]
        for repeat in range(self.o.repeats):
            for subject in rotate(subjects, repeat):
                with self.server(subject) as server:
                    repo = self.repo(server, "small")
                    auth = server.authorization(repo)
                    self.client.push_image(server.url, repo, image.directory, "latest", 1, auth)
                    url = f"{server.url}/v2/{repo}/manifests/latest"
                    headers = {"Accept": OCI_MANIFEST, "Host": server.host}
                    if auth:
                        headers["Authorization"] = auth
                    check_manifest_get(url, headers, image.manifest_digest)
                    loadgen.run(url, headers, self.o.warmup_seconds, self.o.connections)
                    cpu0 = cpu_seconds(server.pid)
                    load = loadgen.run(url, headers, self.o.get_seconds, self.o.connections)
                    cpu = cpu_seconds(server.pid) - cpu0
                add = self.results.add
                extra = {
                    "requests": load.requests,
                    "non_2xx": load.non_2xx,
                    "socket_errors": load.socket_errors,
                }
                add(section, "manifest GET", subject, repeat, load.requests_per_s, "req/s", **extra)
                add(section, "p50 latency", subject, repeat, load.p50_ms, "ms")
                add(section, "p99 latency", subject, repeat, load.p99_ms, "ms")
                add(
                    section,
                    "server CPU per 1k GET",
                    subject,
                    repeat,
                    cpu / max(1, load.requests) * 1e3,
                    "CPU-s",
                )
                self.o.log(
                    f"  {subject:<22} {load.requests_per_s:8.0f} req/s  p50 {load.p50_ms:6.2f} ms"
                    f"  p99 {load.p99_ms:6.2f} ms  non-2xx {load.non_2xx}  socket errors {load.socket_errors}"
                )
                if load.non_2xx or load.socket_errors:
                    self.results.notes.append(
                        f"get: {subject} repeat {repeat}: {load.non_2xx} non-2xx responses, "
                        f"{load.socket_errors} socket errors (req/s counts them)"
                    )

    # -- what a user gets: default settings --------------------------------------------------------
    def defaults(self, blob: Blob, image: Image) -> None:
        """The operator issue's targets as a user meets them: ``cargobay serve`` with no settings at
        all (worker processes from the CPU count, encryption on) against the reference (anonymous).
        Manifest GET by tag with the Bearer JWT docker and crane use, and with Basic credentials on
        every request; the blob pushed (streamed PATCH, docker's way) and pulled by our client and
        by a plain curl."""
        section = "defaults"
        for repeat in range(self.o.repeats):
            for subject in rotate([CARGOBAY_DEFAULT, REFERENCE], repeat):
                with self.server(subject) as server:
                    repo = self.repo(server, "small")
                    bearer = server.authorization(repo)
                    self.client.push_image(server.url, repo, image.directory, "latest", 1, bearer)
                    gets = [(subject, bearer)]
                    if isinstance(server, CargobayServer):
                        gets.append((CARGOBAY_DEFAULT_BASIC, server.basic_authorization()))
                    for shown, auth in gets:
                        self._get_load(server, shown, section, repeat, repo, image, auth)
                    big = self.repo(server, "big")
                    os.sync()
                    pushed = self.client.push(
                        server.url, big, blob.path, blob.digest, "stream", server.authorization(big)
                    )
                    pulled = self.client.pull(
                        server.url, big, blob.digest, blob.size, server.authorization(big)
                    )
                    curl_big = self.repo(server, "curl")
                    os.sync()
                    curl_push = curl_push_seconds(server, curl_big, blob)
                    curl_pull = curl_pull_seconds(server, curl_big, blob)
                add = self.results.add
                mb = blob.size / 1e6
                add(section, "push (client)", subject, repeat, pushed.mb_per_s, "MB/s")
                add(section, "pull (client)", subject, repeat, pulled.mb_per_s, "MB/s")
                add(section, "push (curl)", subject, repeat, mb / curl_push, "MB/s")
                add(section, "pull (curl)", subject, repeat, mb / curl_pull, "MB/s")
                self.o.log(
                    f"  {subject:<22} push {pushed.mb_per_s:7.1f} MB/s (curl {mb / curl_push:7.1f})"
                    f"  pull {pulled.mb_per_s:7.1f} MB/s (curl {mb / curl_pull:7.1f})"
                )

    def _get_load(
        self,
        server: Server,
        subject: str,
        section: str,
        repeat: int,
        repo: str,
        image: Image,
        auth: str | None,
    ) -> None:
        url = f"{server.url}/v2/{repo}/manifests/latest"
        headers = {"Accept": OCI_MANIFEST, "Host": server.host}
        if auth:
            headers["Authorization"] = auth
        check_manifest_get(url, headers, image.manifest_digest)
        loadgen.run(url, headers, self.o.warmup_seconds, self.o.connections)
        load = loadgen.run(url, headers, self.o.get_seconds, self.o.connections)
        self.results.add(section, "manifest GET", subject, repeat, load.requests_per_s, "req/s")
        self.results.add(section, "p99 latency", subject, repeat, load.p99_ms, "ms")
        self.o.log(
            f"  {subject:<26} {load.requests_per_s:8.0f} req/s  p99 {load.p99_ms:6.2f} ms"
            f"  non-2xx {load.non_2xx}  socket errors {load.socket_errors}"
        )
        if load.non_2xx or load.socket_errors:
            self.results.notes.append(
                f"{section}: {subject} repeat {repeat}: {load.non_2xx} non-2xx, "
                f"{load.socket_errors} socket errors"
            )


def _curl(server: Server, args: list[str], repository: str) -> tuple[float, str]:
    auth = server.authorization(repository)
    headers = ["-H", f"Authorization: {auth}"] if auth else []
    start = time.perf_counter()
    done = subprocess.run(
        ["curl", "-sS", "--fail-with-body", "-H", "Expect:", *headers, *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    return time.perf_counter() - start, done.stdout


def curl_push_seconds(server: Server, repository: str, blob: Blob) -> float:
    """A monolithic upload with curl: POST for a session, then one PUT streaming the file."""
    _, head = _curl(
        server,
        ["-D", "-", "-o", "/dev/null", "-X", "POST", f"{server.url}/v2/{repository}/blobs/uploads/"],
        repository,
    )
    location = next(
        line.split(":", 1)[1].strip() for line in head.splitlines() if line.lower().startswith("location:")
    )
    target = urllib.parse.urljoin(server.url + "/", location)
    target += ("&" if "?" in target else "?") + f"digest={blob.digest}"
    seconds, _ = _curl(server, ["-o", "/dev/null", "-T", str(blob.path), target], repository)
    return seconds


def curl_pull_seconds(server: Server, repository: str, blob: Blob) -> float:
    seconds, size = _curl(
        server,
        [
            "-L",
            "-o",
            "/dev/null",
            "-w",
            "%{size_download}",
            f"{server.url}/v2/{repository}/blobs/{blob.digest}",
        ],
        repository,
    )
    if int(size) != blob.size:
        raise RuntimeError(f"curl pulled {size} bytes of {blob.size}")
    return seconds


@dataclass(frozen=True)
class Latency:
    count: int
    p50: float
    p99: float
    max: float


def probe_latency(
    url: str, authorization: str | None, stop: Callable[[], bool], requests: int = 0, gap: float = 0.005
) -> Latency:
    """Sequential ``GET /v2/`` on one keep-alive connection, ``gap`` apart, until ``stop()`` says so
    (or ``requests`` were made); every answer must be a 200."""
    parts = urllib.parse.urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    headers = {"Authorization": authorization} if authorization else {}
    times: list[float] = []
    try:
        while not stop() and (not requests or len(times) < requests):
            started = time.perf_counter()
            connection.request("GET", "/v2/", headers=headers)
            response = connection.getresponse()
            response.read()
            if response.status != 200:
                raise RuntimeError(f"GET {url}/v2/: {response.status}")
            times.append((time.perf_counter() - started) * 1e3)
            time.sleep(gap)
    finally:
        connection.close()
    if not times:
        raise RuntimeError(f"GET {url}/v2/: no request completed while probing")
    cuts = statistics.quantiles(times, n=100, method="inclusive") if len(times) > 1 else times * 99
    return Latency(len(times), statistics.median(times), cuts[98], max(times))


def check_manifest_get(url: str, headers: dict[str, str], digest: str) -> None:
    """One GET before the load: 200 with the pushed manifest's digest (wrk only counts non-2xx)."""
    request = urllib.request.Request(url, headers={k: v for k, v in headers.items() if k != "Host"})
    with urllib.request.urlopen(request, timeout=10) as response:
        if response.status != 200 or response.headers.get("Docker-Content-Digest") != digest:
            raise RuntimeError(
                f"GET {url}: {response.status} {response.headers.get('Docker-Content-Digest')}"
            )


def stored_in_plaintext(data_dir: Path, blob: Blob, probe: int = 1 << 20) -> bool:
    """Whether some stored file starts with the blob's first bytes (so it is not encrypted)."""
    with open(blob.path, "rb") as f:
        head = f.read(probe)
    for dirpath, _dirs, files in os.walk(data_dir):
        for name in files:
            path = Path(dirpath) / name
            try:
                if path.stat().st_size < len(head):
                    continue
                with open(path, "rb") as f:
                    if f.read(len(head)) == head:
                        return True
            except OSError:
                continue
    return False
