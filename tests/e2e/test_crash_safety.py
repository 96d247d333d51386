"""Crash safety: concurrent pushes, SIGKILL at random moments, restart, and check that nothing is
half visible.

Each round runs uploads of every kind (monolithic, chunked, streamed; 0 bytes to several MiB; some
sha512; some racing on the same content) and manifest pushes from several threads, then kills the
whole server process group without warning and starts it again. After every restart:

* the SQLite file passes ``integrity_check`` and ``foreign_key_check``;
* every blob the database knows has its complete object on disk, with the right digest;
* every blob and manifest the server serves matches its digest and size; manifests reference only
  blobs and child manifests that are served; tags resolve;
* everything the server acknowledged (201) before the crash is still there;
* every interrupted upload session is either gone (404, only if its content was committed) or
  resumable from the offset it reports, and then commits the right bytes;
* every staged file belongs to a session.

Randomness comes from one seed; thread interleaving and kill timing still vary between runs, so a
failure message names the round and the object involved.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from cargobay.config import Settings
from cargobay.runtime import build_runtime
from tests.support.images import OCI_INDEX, OCI_MANIFEST, canonical
from tests.support.server import Server

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SEED = 20261127
ROUNDS = 5
WORKERS = 8
REGISTRY = "crash"
REPOSITORIES = (f"{REGISTRY}/a", f"{REGISTRY}/b/app", f"{REGISTRY}/c")
TAGS = ("latest", "v1", "v2", "v3")
KiB, MiB = 1024, 1024 * 1024
SHARED = [
    random.Random(f"{SEED}-shared-{i}").randbytes(size) for i, size in enumerate((0, 10, 70 * KiB, MiB + 3))
]
ACCEPT_ALL = "*/*"


def digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


@dataclass
class OpenSession:
    """An upload whose session the server confirmed (202) and that the crash interrupted."""

    repo: str
    location: str
    data: bytes
    algorithm: str
    finishing: bool = False


@dataclass
class Ledger:
    """What the server acknowledged, and what went wrong while it was alive."""

    blobs: dict[tuple[str, str], int] = field(default_factory=dict)  # (repo, digest) -> size
    manifests: dict[tuple[str, str], bytes] = field(default_factory=dict)  # (repo, digest) -> body
    sessions: list[OpenSession] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def blobs_in(self, repo: str) -> list[tuple[str, int]]:
        with self.lock:
            return [(digest, size) for (r, digest), size in self.blobs.items() if r == repo]

    def manifests_in(self, repo: str) -> list[tuple[str, bytes]]:
        with self.lock:
            return [(digest, body) for (r, digest), body in self.manifests.items() if r == repo]


class Worker(threading.Thread):
    """Pushes until told to stop or until the server disappears under it."""

    def __init__(self, server: Server, ledger: Ledger, rng: random.Random, stop: threading.Event) -> None:
        super().__init__(daemon=True)
        self.server = server
        self.ledger = ledger
        self.rng = rng
        self.stop_event = stop
        self.current: OpenSession | None = None

    def run(self) -> None:
        operations = (self.monolithic, self.chunked, self.streamed, self.manifest, self.index)
        with httpx.Client(base_url=self.server.url, auth=self.server.auth, timeout=60) as http:
            self.http = http
            try:
                while not self.stop_event.is_set():
                    self.rng.choices(operations, weights=(4, 3, 2, 4, 1))[0]()
            except httpx.TransportError:  # the server was killed
                if self.current is not None:
                    with self.ledger.lock:
                        self.ledger.sessions.append(self.current)

    # -- content ------------------------------------------------------------------------------
    def _content(self) -> tuple[bytes, str]:
        rng = self.rng
        if rng.random() < 0.15:
            data = rng.choice(SHARED)  # several threads race to store the same digest
        else:
            size = rng.choices(
                (0, rng.randint(1, KiB), rng.randint(KiB, 256 * KiB), rng.randint(256 * KiB, 5 * MiB)),
                weights=(1, 6, 8, 2),
            )[0]
            data = rng.randbytes(size)
        return data, "sha512" if rng.random() < 0.25 else "sha256"

    def _fail(self, what: str, response: httpx.Response) -> None:
        with self.ledger.lock:
            self.ledger.failures.append(f"{what}: {response.status_code} {response.text[:300]}")

    def _acked_blob(self, repo: str, data: bytes, digest: str, response: httpx.Response) -> None:
        if response.status_code != 201 or response.headers.get("docker-content-digest") != digest:
            self._fail(f"commit of {digest} ({len(data)} bytes) in {repo}", response)
            return
        with self.ledger.lock:
            self.ledger.blobs[(repo, digest)] = len(data)

    # -- uploads ------------------------------------------------------------------------------
    def monolithic(self) -> None:
        repo = self.rng.choice(REPOSITORIES)
        data, algorithm = self._content()
        digest = digest_of(data, algorithm)
        response = self.http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
        self._acked_blob(repo, data, digest, response)

    def _open(self, repo: str, data: bytes, algorithm: str) -> OpenSession | None:
        response = self.http.post(f"/v2/{repo}/blobs/uploads/")
        if response.status_code != 202:
            self._fail(f"session in {repo}", response)
            return None
        session = OpenSession(repo, response.headers["location"], data, algorithm)
        self.current = session
        return session

    def _finish(self, session: OpenSession, tail: bytes = b"") -> None:
        digest = digest_of(session.data, session.algorithm)
        session.finishing = True
        response = self.http.put(session.location, params={"digest": digest}, content=tail)
        self.current = None
        self._acked_blob(session.repo, session.data, digest, response)

    def chunked(self) -> None:
        repo = self.rng.choice(REPOSITORIES)
        data, algorithm = self._content()
        session = self._open(repo, data, algorithm)
        if session is None:
            return
        offset = 0
        keep_for_put = self.rng.randint(0, min(len(data), 64 * KiB)) if self.rng.random() < 0.5 else 0
        while offset < len(data) - keep_for_put:
            size = min(self.rng.randint(16 * KiB, MiB), len(data) - keep_for_put - offset)
            chunk = data[offset : offset + size]
            response = self.http.patch(
                session.location,
                content=chunk,
                headers={
                    "Content-Range": f"{offset}-{offset + size - 1}",
                    "Content-Type": "application/octet-stream",
                },
            )
            if response.status_code != 202 or response.headers.get("range") != f"0-{offset + size - 1}":
                self._fail(f"chunk {offset}+{size} of {session.location}", response)
                self.current = None
                return
            offset += size
        self._finish(session, data[offset:])

    def streamed(self) -> None:
        repo = self.rng.choice(REPOSITORIES)
        data, algorithm = self._content()
        session = self._open(repo, data, algorithm)
        if session is None:
            return

        def pieces() -> Iterator[bytes]:
            for start in range(0, len(data), 64 * KiB):
                yield data[start : start + 64 * KiB]

        if data:
            response = self.http.patch(session.location, content=pieces())
            if response.status_code != 202:
                self._fail(f"streamed body of {session.location}", response)
                self.current = None
                return
        self._finish(session)

    # -- manifests ----------------------------------------------------------------------------
    def manifest(self) -> None:
        repo = self.rng.choice(REPOSITORIES)
        known = self.ledger.blobs_in(repo)
        if not known:
            return
        picked = self.rng.sample(known, min(len(known), self.rng.randint(1, 4)))
        (config_digest, config_size), *layers = picked
        body = canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.cargobay.crash+json",
                    "digest": config_digest,
                    "size": config_size,
                },
                "layers": [
                    {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": d, "size": s}
                    for d, s in layers
                ],
                "annotations": {"nonce": str(self.rng.getrandbits(64))},
            }
        )
        self._push_manifest(repo, body, OCI_MANIFEST)

    def index(self) -> None:
        repo = self.rng.choice(REPOSITORIES)
        known = self.ledger.manifests_in(repo)
        if len(known) < 2:
            return
        children = self.rng.sample(known, 2)
        body = canonical(
            {
                "schemaVersion": 2,
                "mediaType": OCI_INDEX,
                "manifests": [
                    {
                        "mediaType": json.loads(child)["mediaType"],
                        "digest": digest,
                        "size": len(child),
                        "platform": {"os": "linux", "architecture": arch},
                    }
                    for (digest, child), arch in zip(children, ("amd64", "arm64"), strict=True)
                ],
            }
        )
        self._push_manifest(repo, body, OCI_INDEX)

    def _push_manifest(self, repo: str, body: bytes, media_type: str) -> None:
        by_tag = self.rng.random() < 0.6
        digest = digest_of(body, "sha512" if not by_tag and self.rng.random() < 0.3 else "sha256")
        reference = self.rng.choice(TAGS) if by_tag else digest
        response = self.http.put(
            f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": media_type}
        )
        if response.status_code != 201:
            self._fail(f"manifest {reference} in {repo}", response)
            return
        with self.ledger.lock:
            self.ledger.manifests[(repo, response.headers["docker-content-digest"])] = body


# -- checks ------------------------------------------------------------------------------------


def check_database_file(path: Path) -> None:
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def _rows(server: Server, query: str) -> list[tuple[object, ...]]:
    path = server.data_dir / "cargobay.db"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        return db.execute(query).fetchall()


def check_storage(server: Server, where: str) -> None:
    """Every blob row has its whole object; every staged file belongs to a live session.

    Objects are read through the server's own blob store (decrypting them when encryption is on,
    which also authenticates every segment), not as raw files.
    """
    storage = server.data_dir / "storage"
    blobs = [
        (str(d), int(str(n)), str(k))
        for d, n, k in _rows(server, "SELECT digest, size, object_key FROM blobs")
    ]
    runtime = build_runtime(Settings(data_dir=server.data_dir), migrate=False)

    async def read_all() -> dict[str, bytes | None]:
        found: dict[str, bytes | None] = {}
        for _digest, _size, key in blobs:
            if await runtime.store.stat(key) is None:
                found[key] = None
                continue
            found[key] = b"".join([chunk async for chunk in runtime.store.reader(key)])
        await runtime.close()
        return found

    contents = asyncio.run(read_all())
    for digest, size, key in blobs:
        data = contents[key]
        assert data is not None, f"{where}: blob {digest} has no object at {key}"
        assert len(data) == size, (
            f"{where}: blob {digest} is {len(data)} bytes in storage, {size} in the database"
        )
        assert digest_of(data, digest.split(":")[0]) == digest, (
            f"{where}: object of {digest} holds other bytes"
        )
    sessions = {str(key) for (key,) in _rows(server, "SELECT object_key FROM uploads")}
    staging = storage / "staging"
    staged = {
        p.relative_to(staging).as_posix().removesuffix(".cbe") for p in staging.rglob("*") if p.is_file()
    }
    assert staged <= sessions, f"{where}: staged files without a session: {sorted(staged - sessions)[:5]}"


def check_served(server: Server, http: httpx.Client, ledger: Ledger, where: str) -> None:
    """Everything the database lists is served intact, and everything acknowledged is listed."""
    blob_rows = _rows(
        server,
        "SELECT g.name || '/' || r.name, b.digest, b.size FROM repository_blobs rb"
        " JOIN repositories r ON r.id = rb.repository_id JOIN registries g ON g.id = r.registry_id"
        " JOIN blobs b ON b.id = rb.blob_id",
    )
    served_blobs = {(str(repo), str(digest)): int(str(size)) for repo, digest, size in blob_rows}
    for (repo, digest), size in served_blobs.items():
        response = http.get(f"/v2/{repo}/blobs/{digest}")
        assert response.status_code == 200, f"{where}: GET blob {digest} in {repo}: {response.status_code}"
        assert len(response.content) == size, f"{where}: blob {digest} in {repo} served short"
        assert digest_of(response.content, digest.split(":")[0]) == digest, (
            f"{where}: blob {digest} served wrong"
        )
    manifest_rows = _rows(
        server,
        "SELECT g.name || '/' || r.name, m.digest, m.size FROM manifests m"
        " JOIN repositories r ON r.id = m.repository_id JOIN registries g ON g.id = r.registry_id",
    )
    served_manifests = set()
    for repo, digest, size in manifest_rows:
        repo, digest = str(repo), str(digest)
        served_manifests.add((repo, digest))
        response = http.get(f"/v2/{repo}/manifests/{digest}", headers={"Accept": ACCEPT_ALL})
        assert response.status_code == 200, (
            f"{where}: GET manifest {digest} in {repo}: {response.status_code}"
        )
        assert len(response.content) == size
        assert digest_of(response.content, digest.split(":")[0]) == digest, (
            f"{where}: manifest {digest} served wrong"
        )
        doc = json.loads(response.content)
        for descriptor in [doc.get("config"), *doc.get("layers", [])]:
            if descriptor is not None:
                key = (repo, descriptor["digest"])
                assert served_blobs.get(key) == descriptor["size"], (
                    f"{where}: {digest} references {key} (missing)"
                )
        for child in doc.get("manifests", []):
            head = http.head(f"/v2/{repo}/manifests/{child['digest']}", headers={"Accept": ACCEPT_ALL})
            assert head.status_code == 200, f"{where}: index {digest} references missing {child['digest']}"
    for repo, tag, digest in _rows(
        server,
        "SELECT g.name || '/' || r.name, t.name, m.digest FROM tags t"
        " JOIN manifests m ON m.id = t.manifest_id JOIN repositories r ON r.id = t.repository_id"
        " JOIN registries g ON g.id = r.registry_id",
    ):
        head = http.head(f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT_ALL})
        assert head.headers.get("docker-content-digest") == digest, f"{where}: tag {tag} of {repo}"
    with ledger.lock:
        lost_blobs = set(ledger.blobs) - set(served_blobs)
        lost_manifests = set(ledger.manifests) - served_manifests
    assert not lost_blobs, f"{where}: acknowledged blobs lost: {sorted(lost_blobs)[:5]}"
    assert not lost_manifests, f"{where}: acknowledged manifests lost: {sorted(lost_manifests)[:5]}"


def resume_sessions(http: httpx.Client, ledger: Ledger, where: str) -> int:
    """Each interrupted session is gone only if committed; otherwise it resumes where it says."""
    resumed = 0
    for session in ledger.sessions:
        digest = digest_of(session.data, session.algorithm)
        status = http.get(session.location)
        if status.status_code == 404:
            assert session.finishing, f"{where}: session {session.location} vanished before it was finished"
            blob = http.head(f"/v2/{session.repo}/blobs/{digest}")
            assert blob.status_code == 200, (
                f"{where}: session {session.location} is gone and {digest} is not stored"
            )
            continue
        assert status.status_code == 204, f"{where}: status of {session.location}: {status.status_code}"
        end = int(status.headers["range"].split("-")[1])
        # "0-0" means 0 or 1 byte received (the header cannot say which): try both.
        offsets = [end + 1] if end > 0 else [0, 1]
        assert offsets[0] <= len(session.data), f"{where}: {session.location} claims {end + 1} bytes"
        for offset in offsets:
            rest = session.data[offset:]
            headers = {"Content-Range": f"{offset}-{offset + len(rest) - 1}"} if rest else {}
            response = http.put(session.location, params={"digest": digest}, content=rest, headers=headers)
            if response.status_code != 416:
                break
        assert response.status_code == 201, (
            f"{where}: resuming {session.location} at {offset}: {response.text}"
        )
        with ledger.lock:
            ledger.blobs[(session.repo, digest)] = len(session.data)
        resumed += 1
    ledger.sessions.clear()
    return resumed


def bearer_client(server: Server) -> httpx.Client:
    """A client with one JWT for every repository (checks make thousands of requests; Basic
    would verify the password on each)."""
    scopes = [f"repository:{repo}:pull,push" for repo in REPOSITORIES]
    token = httpx.get(
        f"{server.url}/auth/token", params={"service": server.host, "scope": scopes}, auth=server.auth
    ).json()["token"]
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=60)


@pytest.fixture
def crash_server(tmp_path: Path) -> Iterator[Server]:
    server = Server(data_dir=tmp_path / "data")
    server.data_dir.mkdir()
    server.start()
    server.create_registry(REGISTRY)
    try:
        yield server
    finally:
        server.kill()


def test_sigkill_during_concurrent_pushes_leaves_nothing_half_visible(crash_server: Server) -> None:
    server = crash_server
    rng = random.Random(SEED)
    ledger = Ledger()
    interrupted = 0
    for round_number in range(1, ROUNDS + 1):
        where = f"round {round_number}"
        stop = threading.Event()
        workers = [
            Worker(server, ledger, random.Random(f"{SEED}-{round_number}-{i}"), stop) for i in range(WORKERS)
        ]
        assert httpx.get(f"{server.url}/v2/", auth=server.auth).status_code == 200  # warm, so all rounds push
        for worker in workers:
            worker.start()
        time.sleep(rng.uniform(2.0, 5.0))
        server.kill()
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
            assert not worker.is_alive()
        assert not ledger.failures, f"{where}: errors while the server was up: {ledger.failures[:5]}"

        check_database_file(server.data_dir / "cargobay.db")
        server.start()
        check_storage(server, where)
        with bearer_client(server) as http:
            interrupted += resume_sessions(http, ledger, where)
            check_served(server, http, ledger, where)
        check_storage(server, f"{where}, after resuming")

    assert len(ledger.blobs) > 50, "the workload hardly ran: the test proves nothing"
    assert len(ledger.manifests) > 10
    assert interrupted > 0, "no kill caught an upload session half-way"
