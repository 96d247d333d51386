"""Registry traffic timed while something else runs (a garbage collection): threads pulling and pushing
small images in a loop, each operation's latency filed under the phase it started in.

A pull is a manifest GET by digest and a GET of one of its blobs; a push is two blobs (a config and a
random layer, each a POST and a monolithic PUT) and a manifest PUT under a new tag, five requests.
An operation is *refused* when any of its requests answers an unexpected status or fails (timeout,
connection error); refused operations are counted, not timed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import statistics
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
PHASES = ("idle", "gc")


@dataclass
class Latencies:
    samples: list[float] = field(default_factory=list)
    refused: int = 0
    errors: list[str] = field(default_factory=list)  # the first few refusals, to say why
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, seconds: float | None, error: str | None = None) -> None:
        with self.lock:
            if seconds is not None:
                self.samples.append(seconds)
                return
            self.refused += 1
            if error is not None and len(self.errors) < 5:
                self.errors.append(error)

    def summary(self) -> dict[str, object]:
        ordered = sorted(self.samples)
        out: dict[str, object] = {"count": len(ordered), "refused": self.refused}
        if self.errors:
            out["first_refusals"] = list(self.errors)
        if ordered:
            out["p50_ms"] = round(statistics.median(ordered) * 1000, 2)
            out["p99_ms"] = round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 2)
            out["max_ms"] = round(ordered[-1] * 1000, 2)
        return out


class Refused(Exception):
    """An operation's request answered what it should not have."""


def _expect(response: httpx.Response, status: int) -> httpx.Response:
    if response.status_code != status:
        raise Refused(f"{response.request.method} {response.request.url.path}: {response.status_code}")
    return response


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Traffic:
    """``pullers`` threads pulling from ``pull_set`` (repository, manifest digest, blob digest) and
    ``pushers`` threads pushing images of ``push_bytes`` into ``{registry}/push/{thread}``.

    ``phase`` (None: warming up, not recorded) names the bucket an operation's latency goes to.
    """

    url: str
    auth: tuple[str, str]
    registry: str
    pull_set: list[tuple[str, str, str]]
    pullers: int = 4
    pushers: int = 2
    push_bytes: int = 64 * 1024
    phase: str | None = None
    buckets: dict[tuple[str, str], Latencies] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.buckets = {(kind, phase): Latencies() for kind in ("pull", "push") for phase in PHASES}

    def summary(self, kind: str, phase: str) -> dict[str, object]:
        return self.buckets[(kind, phase)].summary()

    def _loop(self, kind: str, operation: Callable[[httpx.Client, int], None], first: int, step: int) -> None:
        with httpx.Client(base_url=self.url, auth=self.auth, timeout=60) as http:
            n = first
            while not self.stop.is_set():
                phase = self.phase
                started = time.perf_counter()
                error: str | None = None
                try:
                    operation(http, n)
                except (Refused, httpx.HTTPError) as exc:
                    error = f"{type(exc).__name__}: {exc}"
                took = time.perf_counter() - started
                n += step
                if phase is not None:
                    self.buckets[(kind, phase)].add(None if error else took, error)

    def pull(self, http: httpx.Client, n: int) -> None:
        repo, manifest, blob = self.pull_set[n % len(self.pull_set)]
        _expect(http.get(f"/v2/{repo}/manifests/{manifest}", headers={"Accept": OCI_MANIFEST}), 200)
        _expect(http.get(f"/v2/{repo}/blobs/{blob}"), 200)

    def push(self, http: httpx.Client, n: int) -> None:
        repo = f"{self.registry}/push/{n % self.pushers}"
        config = json.dumps({"architecture": "amd64", "os": "linux", "push": n}).encode()
        layer = os.urandom(self.push_bytes)
        for data in (config, layer):
            started = _expect(http.post(f"/v2/{repo}/blobs/uploads/"), 202)
            _expect(
                http.put(
                    started.headers["location"],
                    params={"digest": _digest(data)},
                    content=data,
                    headers={"Content-Type": "application/octet-stream"},
                ),
                201,
            )
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER, "digest": _digest(layer), "size": len(layer)}],
        }
        body = json.dumps(manifest).encode()
        _expect(
            http.put(f"/v2/{repo}/manifests/t{n}", content=body, headers={"Content-Type": OCI_MANIFEST}), 201
        )

    @contextlib.contextmanager
    def running(self) -> Iterator[Traffic]:
        threads = [
            threading.Thread(target=self._loop, args=("pull", self.pull, i, self.pullers), daemon=True)
            for i in range(self.pullers)
        ] + [
            threading.Thread(target=self._loop, args=("push", self.push, i, self.pushers), daemon=True)
            for i in range(self.pushers)
        ]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(60)
