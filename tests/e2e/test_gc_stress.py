"""Garbage collection under fire: pushes (with the HEAD-then-skip-the-upload shortcut real clients
take), tag moves, tag, manifest and repository deletes, mounts, abandoned uploads and pulls, from
many threads against a live server, while two other processes collect garbage in a loop with a zero
grace period, a thousand collections; on SQLite and on PostgreSQL.

While it runs, every manifest of the ``stable`` repository (never deleted, its tag moving) must pull
with all its blobs intact, and no request may fail but for the one refusal GC may cause: a manifest
naming a blob collected since the client saw it (MANIFEST_BLOB_UNKNOWN), which the client retries by
uploading again. Afterwards, every manifest's blobs exist and verify (read back through the store),
every unreferenced blob is gone, the store holds exactly the objects rows name, and ``storageUsage``
adds up.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from cargobay.config import Settings
from cargobay.db.models import Blob, GcRun, Manifest, ManifestBlob, Registry, Upload
from cargobay.runtime import build_runtime
from tests.support.gc import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, check_references_intact, expected_storage
from tests.support.images import sha256
from tests.support.server import Server
from tests.support.v2 import error_code

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# Collections per collecting process (it goes round both registries; a sweep every fifth): 2 x 500,
# 1,000 collections a database, two to four minutes on a busy two-core machine.
ROUNDS = int(os.environ.get("CARGOBAY_GC_STRESS_ROUNDS", "500"))
MAX_SECONDS = int(os.environ.get("CARGOBAY_GC_STRESS_SECONDS", "420"))
PUSHERS = 6
COLLECTORS = 2
SHARED = [random.Random(f"shared-{i}").randbytes(random.Random(i).randint(200, 6000)) for i in range(24)]

LOOP = """
import asyncio, os, sys, time
from datetime import timedelta
from pathlib import Path
from cargobay.config import Settings
from cargobay.logs import configure_logging
from cargobay.runtime import build_runtime

async def main() -> None:
    configure_logging("warning")
    runtime = build_runtime(Settings(), migrate=False)
    stop, target = Path(sys.argv[1]), int(sys.argv[2])
    rounds = 0
    try:
        while not stop.exists() and rounds < target:
            for registry_id, _name in await runtime.services.gc.registries():
                sweep = rounds % 5 == 0  # the listing of the whole namespace, every fifth round
                t = time.monotonic()
                await runtime.services.gc.collect(registry_id, grace=timedelta(0), trigger="cli", sweep=sweep)
                took = time.monotonic() - t
                if took > 1:
                    print(f"slow round {rounds}: {took:.1f} s (sweep {sweep})", file=sys.stderr, flush=True)
                rounds += 1
    finally:
        await runtime.close()
    print(rounds)

asyncio.run(main())
"""


@dataclass
class Ledger:
    stable: dict[str, list[str]] = field(default_factory=dict)  # digest -> blob digests (never deleted)
    failures: list[str] = field(default_factory=list)
    refusals: int = 0  # MANIFEST_BLOB_UNKNOWN answers, retried
    pushes: int = 0
    pulls: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def fail(self, what: str, response: httpx.Response | None = None) -> None:
        detail = f": {response.status_code} {response.text[:300]}" if response is not None else ""
        with self.lock:
            self.failures.append(what + detail)


class Client(threading.Thread):
    def __init__(
        self, server: Server, registries: list[str], ledger: Ledger, seed: str, stop: threading.Event
    ):
        super().__init__(daemon=True)
        self.server, self.registries, self.ledger, self.stop = server, registries, ledger, stop
        self.rng = random.Random(seed)

    def run(self) -> None:
        with httpx.Client(base_url=self.server.url, auth=self.server.auth, timeout=60) as http:
            self.http = http
            try:
                self.loop()
            except Exception as exc:
                self.ledger.fail(f"client crashed: {type(exc).__name__}: {exc}")

    def loop(self) -> None:
        raise NotImplementedError

    # -- pushing like a real client: HEAD each blob, upload what is missing, then the manifest --
    def push(self, repo: str, tag: str, layers: list[bytes]) -> tuple[str, list[str]] | None:
        config = json.dumps({"seed": self.rng.random(), "layers": len(layers)}).encode()
        blobs = [config, *layers]
        descriptors = [{"digest": sha256(b), "size": len(b)} for b in blobs]
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **descriptors[0]},
            "layers": [{"mediaType": OCI_LAYER, **d} for d in descriptors[1:]],
        }
        body = json.dumps(doc).encode()
        # With no grace period a collection may delete a blob between the HEAD that found it and the
        # manifest (or right after its upload): the push is refused, and retried until it wins.
        while not self.stop.is_set():
            for blob, descriptor in zip(blobs, descriptors, strict=True):
                head = self.http.head(f"/v2/{repo}/blobs/{descriptor['digest']}")
                if head.status_code == 200:
                    continue
                if head.status_code != 404:
                    return self.ledger.fail(f"HEAD blob in {repo}", head)
                put = self.http.post(
                    f"/v2/{repo}/blobs/uploads/", params={"digest": descriptor["digest"]}, content=blob
                )
                if put.status_code != 201:
                    return self.ledger.fail(f"upload to {repo}", put)
            response = self.http.put(
                f"/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST}
            )
            if response.status_code == 201:
                with self.ledger.lock:
                    self.ledger.pushes += 1
                return sha256(body), [d["digest"] for d in descriptors]
            if response.status_code == 400 and error_code(response) == "MANIFEST_BLOB_UNKNOWN":
                with self.ledger.lock:
                    self.ledger.refusals += 1
                continue
            return self.ledger.fail(f"manifest push to {repo}", response)
        return None

    def layers(self) -> list[bytes]:
        chosen = self.rng.sample(SHARED, self.rng.randint(1, 3))
        if self.rng.random() < 0.5:
            chosen.append(self.rng.randbytes(self.rng.randint(10, 4000)))
        return chosen


class Pusher(Client):
    def loop(self) -> None:
        operations = (
            self.push_stable,
            self.push_volatile,
            self.delete_tag,
            self.delete_manifest,
            self.delete_repository,
            self.mount,
            self.abandon_upload,
        )
        while not self.stop.is_set():
            self.rng.choices(operations, weights=(4, 6, 2, 2, 1, 2, 2))[0]()

    def push_stable(self) -> None:
        pushed = self.push(
            f"{self.registries[0]}/stable", self.rng.choice(("latest", "v1", "v2")), self.layers()
        )
        if pushed is not None:
            with self.ledger.lock:
                self.ledger.stable[pushed[0]] = pushed[1]

    def volatile(self) -> str:
        return f"{self.rng.choice(self.registries)}/tmp/{self.rng.randint(0, 5)}"

    def push_volatile(self) -> None:
        self.push(self.volatile(), self.rng.choice(("latest", "a", "b")), self.layers())

    def delete_tag(self) -> None:
        response = self.http.delete(
            f"/v2/{self.volatile()}/manifests/{self.rng.choice(('latest', 'a', 'b'))}"
        )
        if response.status_code not in (202, 404):
            self.ledger.fail("tag delete", response)

    def delete_manifest(self) -> None:
        repo = self.volatile()
        head = self.http.head(f"/v2/{repo}/manifests/latest", headers={"Accept": OCI_MANIFEST})
        if head.status_code != 200:
            return
        response = self.http.delete(f"/v2/{repo}/manifests/{head.headers['docker-content-digest']}")
        if response.status_code not in (202, 404):
            self.ledger.fail("manifest delete", response)

    def delete_repository(self) -> None:
        registry, repository = self.volatile().split("/", 1)
        registry_id = self.server_ids[registry]
        encoded = repository.replace("/", "%2F")
        response = self.http.delete(f"/containerregistries/registries/{registry_id}/repositories/{encoded}")
        if response.status_code not in (204, 404):
            self.ledger.fail("repository delete", response)

    def mount(self) -> None:
        digest = sha256(self.rng.choice(SHARED))
        target = self.volatile()
        response = self.http.post(
            f"/v2/{target}/blobs/uploads/",
            params={"mount": digest, "from": f"{target.split('/')[0]}/stable"},
        )
        if response.status_code == 202:  # not mountable (collected, or never there): drop the session
            self.http.delete(response.headers["location"])
        elif response.status_code != 201:
            self.ledger.fail("mount", response)

    def abandon_upload(self) -> None:
        repo = self.volatile()
        if self.rng.random() < 0.5:
            data = self.rng.randbytes(self.rng.randint(1, 3000))
            response = self.http.post(
                f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, content=data
            )
            if response.status_code != 201:
                self.ledger.fail("unreferenced upload", response)
            return
        start = self.http.post(f"/v2/{repo}/blobs/uploads/")
        if start.status_code != 202:
            return self.ledger.fail("upload start", start)
        chunk = self.http.patch(start.headers["location"], content=self.rng.randbytes(500))
        if chunk.status_code != 202:
            self.ledger.fail("upload chunk", chunk)

    server_ids: dict[str, str] = {}


class Puller(Client):
    """Pulls manifests of ``stable`` (which nobody deletes) with every blob, checking digests."""

    def loop(self) -> None:
        repo = f"{self.registries[0]}/stable"
        while not self.stop.is_set():
            with self.ledger.lock:
                known = list(self.ledger.stable.items())
            if not known:
                time.sleep(0.05)
                continue
            digest, blobs = self.rng.choice(known)
            manifest = self.http.get(f"/v2/{repo}/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
            if manifest.status_code != 200:
                self.ledger.fail(f"pull of manifest {digest}", manifest)
                continue
            for blob in blobs:
                response = self.http.get(f"/v2/{repo}/blobs/{blob}")
                if response.status_code != 200 or sha256(response.content) != blob:
                    self.ledger.fail(f"pull of blob {blob} of {digest}", response)
            with self.ledger.lock:
                self.ledger.pulls += 1


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def stress_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Server]:
    env = {"CARGOBAY_GC_GRACE_SECONDS": "0", "CARGOBAY_GC_SWEEP_KEYS_PER_SECOND": "0"}
    if request.param == "postgresql":
        env["CARGOBAY_DATABASE_URL"] = request.getfixturevalue("pg_migrated_url")
    server = Server(data_dir=tmp_path / "data", extra_env=env)
    with server:
        yield server


def test_collections_in_a_loop_never_touch_what_pushes_and_pulls_need(stress_server: Server) -> None:
    server = stress_server
    names = ["stress-keep", "stress-drop"]
    ids = {name: server.create_registry(name) for name in names}
    server.cli("registry", "gc-policy", "stress-drop", "--untagged-manifests", "delete")
    Pusher.server_ids = ids
    stop_file = server.data_dir.parent / "stop-collecting"
    env = server.env()
    logs = [server.data_dir.parent / f"collector-{i}.log" for i in range(COLLECTORS)]
    collectors = [
        subprocess.Popen(
            [sys.executable, "-c", LOOP, str(stop_file), str(ROUNDS)],
            env=env,
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    ledger, stop = Ledger(), threading.Event()
    clients: list[Client] = [Pusher(server, names, ledger, f"pusher-{i}", stop) for i in range(PUSHERS)]
    clients += [Puller(server, names, ledger, f"puller-{i}", stop) for i in range(2)]
    try:
        for client in clients:
            client.start()
        deadline = time.monotonic() + MAX_SECONDS
        while time.monotonic() < deadline and any(c.poll() is None for c in collectors):
            time.sleep(1)
    finally:
        stop.set()
        for client in clients:
            client.join(120)
        stop_file.touch()
        for collector in collectors:
            collector.wait(timeout=300)
    rounds = 0
    for collector, log in zip(collectors, logs, strict=True):
        output = log.read_text()
        assert collector.returncode == 0, output[-3000:]
        rounds += int(output.split()[-1])
    assert not ledger.failures, f"{len(ledger.failures)} failures, first: {ledger.failures[:5]}"
    assert rounds == COLLECTORS * ROUNDS, f"only {rounds} collections ran in {MAX_SECONDS} s"
    # With no grace period most pushes lose a race (their fresh blobs are collected before the
    # manifest lands) and are retried: about one in four succeeds.
    assert ledger.pushes > 50 and ledger.pulls > 100 and len(ledger.stable) > 10
    print(
        f"\n{rounds} collections, {ledger.pushes} pushes ({ledger.refusals} refused and retried), "
        f"{ledger.pulls} pulls"
    )

    final = server.cli("gc", "--grace", "0")
    assert final.returncode == 0, final.stderr
    check_after(server, ids, ledger)


def check_after(server: Server, ids: dict[str, str], ledger: Ledger) -> None:
    runtime = build_runtime(Settings(**_settings(server)), migrate=False)
    db = runtime.db

    async def intact() -> int:
        try:
            return await check_references_intact(runtime)
        finally:
            await runtime.close()

    def unreferenced(session):  # type: ignore[no-untyped-def]
        referenced = select(ManifestBlob.blob_id).where(ManifestBlob.blob_id == Blob.id).exists()
        return session.scalar(select(func.count()).select_from(Blob).where(~referenced))

    present = set(db.read_sync(lambda s: s.scalars(select(Manifest.digest)).all()))
    assert set(ledger.stable) <= present, "an acknowledged manifest of a repository nobody deleted is gone"
    assert db.read_sync(unreferenced) == 0, "unreferenced blobs survived a collection with no grace period"
    keys = set(db.read_sync(lambda s: s.scalars(select(Blob.object_key)).all()))
    sessions = {u.replace("-", "") for u in db.read_sync(lambda s: s.scalars(select(Upload.id)).all())}
    objects = server.data_dir / "storage" / "objects"
    stored = {
        key
        for p in objects.rglob("*")
        if p.is_file()
        and not _of_open_upload(key := p.relative_to(objects).as_posix().removesuffix(".cbe"), sessions)
    }
    assert stored == keys, (
        f"objects no row names: {sorted(stored - keys)[:5]}; rows without: {sorted(keys - stored)[:5]}"
    )
    for registry_id in ids.values():
        usage = db.read_sync(lambda s, r=registry_id: s.get(Registry, r).storage_bytes)
        assert usage == expected_storage(db, registry_id)
    failed = db.read_sync(lambda s: s.scalars(select(GcRun.error).where(GcRun.state == "failed")).all())
    assert failed == [], failed[:3]
    assert asyncio.run(intact()) > 20
    db.dispose()


def _settings(server: Server) -> dict[str, object]:
    values: dict[str, object] = {"data_dir": server.data_dir}
    if "CARGOBAY_DATABASE_URL" in server.extra_env:
        values["database_url"] = server.extra_env["CARGOBAY_DATABASE_URL"]
    return values


def _of_open_upload(key: str, sessions: set[str]) -> bool:
    """What the writer of an abandoned (not yet expired) upload keeps beside its object (a tail)."""
    parts = key.split("/")
    return len(parts) == 3 and parts[1] == "uploads" and parts[2].split(".", 1)[0] in sessions
