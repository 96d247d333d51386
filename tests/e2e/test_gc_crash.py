"""Garbage collection killed at random points of a run (``CARGOBAY_CRASH_AT``: the process ends
with ``os._exit`` there, as a power cut would), while a server keeps serving the registry.

Each round makes garbage (a repository with layers of its own deleted, an untagged manifest in a
registry whose policy deletes them, an object no row names, an abandoned upload), then runs
``cargobay gc --grace 0`` set to die at one of the crash points inside the collection. After the
crash, nothing referenced is missing: every manifest pulls from the server with all its blobs, and
every blob a manifest references reads back whole through the store. The next run completes and
leaves nothing collectable behind. Then a collection job's child process dies inside the run while
the server serves on, and the retried job completes it; last, with collections inside the serving
process, the server itself dies inside one, and once restarted takes the job's run over.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select, text

from cargobay.config import Settings
from cargobay.db.models import Blob, GcObjectDeletion, GcRun, ManifestBlob, Registry
from cargobay.faults import EXIT_CODE
from cargobay.runtime import build_runtime
from tests.support.gc import OCI_CONFIG, OCI_LAYER, OCI_MANIFEST, check_references_intact, expected_storage
from tests.support.images import sha256
from tests.support.server import Server, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

SEED = 20261208
ROUNDS = 10
CRASH_POINTS = (
    "gc.blob_batch",
    "gc.rows_deleted",
    "gc.objects_deleted",
    "gc.manifests_deleted",
    "gc.sweep_due",
)
TWICE = ("gc.blob_batch", "gc.rows_deleted", "gc.objects_deleted")  # points a run passes twice
KEEP, DROP = "crash-keep", "crash-drop"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    env = {
        "CARGOBAY_JOB_LEASE_SECONDS": "2",
        "CARGOBAY_GC_SWEEP_KEYS_PER_SECOND": "0",
        "CARGOBAY_GC_IN_CHILD_PROCESS": "true",  # the default; the suite's servers run collections inline
    }
    with Server(data_dir=tmp_path / "data", extra_env=env) as srv:
        yield srv


class Pusher:
    def __init__(self, server: Server, rng: random.Random) -> None:
        self.server, self.rng = server, rng
        self.http = httpx.Client(base_url=server.url, auth=server.auth, timeout=60)

    def blob(self, repo: str, data: bytes) -> dict[str, object]:
        response = self.http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, content=data)
        assert response.status_code == 201, response.text
        return {"digest": sha256(data), "size": len(data)}

    def image(self, repo: str, tag: str, shared: list[bytes]) -> str:
        layers = [*shared, self.rng.randbytes(self.rng.randint(100, 50_000))]
        config = self.blob(repo, b'{"round": %d}' % self.rng.getrandbits(32))
        doc = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **config},
            "layers": [{"mediaType": OCI_LAYER, **self.blob(repo, layer)} for layer in layers],
        }
        body = json.dumps(doc).encode()
        response = self.http.put(
            f"/v2/{repo}/manifests/{tag}", content=body, headers={"Content-Type": OCI_MANIFEST}
        )
        assert response.status_code == 201, response.text
        return sha256(body)


def make_garbage(server: Server, pusher: Pusher, ids: dict[str, str], shared: list[bytes], n: int) -> None:
    rng = pusher.rng
    for i in range(rng.randint(1, 3)):
        pusher.image(f"{KEEP}/gone-{n}-{i}", "v1", shared)
        response = pusher.http.delete(
            f"/containerregistries/registries/{ids[KEEP]}/repositories/gone-{n}-{i}"
        )
        assert response.status_code == 204
    pusher.image(f"{KEEP}/app", "latest", shared)  # the tag moves: the old image stays (keep)
    pusher.image(f"{DROP}/app", "latest", shared)  # the tag moves: the old image goes (delete)
    for _ in range(rng.randint(1, 3)):
        pusher.blob(f"{KEEP}/app", rng.randbytes(rng.randint(1, 3000)))  # uploaded, never referenced
    oid = f"{rng.getrandbits(128):032x}"
    leftover = server.data_dir / "storage" / "objects" / ids[KEEP] / "blobs" / oid[:2] / f"{oid}.cbe"
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"committed just before a crash: no row names it")
    start = pusher.http.post(f"/v2/{KEEP}/app/blobs/uploads/")
    assert start.status_code == 202  # abandoned, not expired: kept


def check_referenced(server: Server, pusher: Pusher, where: str) -> None:
    """Every manifest pulls with all its blobs; every referenced blob reads back whole."""
    runtime = build_runtime(Settings(data_dir=server.data_dir), migrate=False)
    try:
        asyncio.run(_intact(runtime))
        rows = runtime.db.read_sync(
            lambda s: s.execute(
                text(
                    "SELECT g.name || '/' || r.name, m.digest FROM manifests m "
                    "JOIN repositories r ON r.id = m.repository_id JOIN registries g ON g.id = r.registry_id"
                )
            ).all()
        )
    finally:
        runtime.db.dispose()
    for repo, digest in rows:
        manifest = pusher.http.get(f"/v2/{repo}/manifests/{digest}", headers={"Accept": OCI_MANIFEST})
        assert manifest.status_code == 200, f"{where}: manifest {digest} of {repo}: {manifest.status_code}"
        doc = manifest.json()
        for descriptor in [doc["config"], *doc["layers"]]:
            blob = pusher.http.get(f"/v2/{repo}/blobs/{descriptor['digest']}")
            assert blob.status_code == 200 and sha256(blob.content) == descriptor["digest"], (
                f"{where}: blob {descriptor['digest']} of {digest} in {repo}: {blob.status_code}"
            )


async def _intact(runtime) -> None:  # type: ignore[no-untyped-def]
    try:
        await check_references_intact(runtime)
    finally:
        await runtime.store.close()


def check_clean(server: Server, where: str) -> None:
    """After a complete run with no grace period: nothing collectable is left."""
    runtime = build_runtime(Settings(data_dir=server.data_dir), migrate=False)
    db = runtime.db
    try:
        referenced = select(ManifestBlob.blob_id).where(ManifestBlob.blob_id == Blob.id).exists()
        assert (
            db.read_sync(lambda s: s.scalar(select(func.count()).select_from(Blob).where(~referenced))) == 0
        ), where
        assert db.read_sync(lambda s: s.scalar(select(func.count()).select_from(GcObjectDeletion))) == 0, (
            where
        )
        keys = set(db.read_sync(lambda s: s.scalars(select(Blob.object_key)).all()))
        objects = server.data_dir / "storage" / "objects"
        stored = {
            p.relative_to(objects).as_posix().removesuffix(".cbe") for p in objects.rglob("*") if p.is_file()
        }
        assert stored == keys, f"{where}: {sorted(stored ^ keys)[:5]}"
        for registry_id in db.read_sync(lambda s: s.scalars(select(Registry.id)).all()):
            assert db.read_sync(
                lambda s, r=registry_id: s.get(Registry, r).storage_bytes
            ) == expected_storage(db, registry_id), where
    finally:
        db.dispose()


def request_run(server: Server, registry_id: str) -> None:
    """A run asked of the management API: a job, like a scheduled window's (those wait for their
    minute; tests/e2e/test_gc.py runs one)."""
    with httpx.Client(base_url=f"{server.url}/containerregistries", auth=server.auth, timeout=30) as mgmt:
        answer = mgmt.post(f"/registries/{registry_id}/garbageCollection/runs")
        assert answer.status_code in (201, 202), answer.text


def job_runs(server: Server, registry_id: str) -> list[str]:
    """The states of the registry's runs asked of the API, oldest first."""
    runtime = build_runtime(Settings(data_dir=server.data_dir), migrate=False)
    try:
        return list(
            runtime.db.read_sync(
                lambda s: s.scalars(
                    select(GcRun.state)
                    .where(GcRun.registry_id == registry_id, GcRun.trigger == "api")
                    .order_by(GcRun.id)
                ).all()
            )
        )
    finally:
        runtime.db.dispose()


def test_a_collection_killed_anywhere_loses_nothing_and_the_next_one_completes(server: Server) -> None:
    rng = random.Random(SEED)
    ids = {name: server.create_registry(name) for name in (KEEP, DROP)}
    server.cli("registry", "gc-policy", DROP, "--untagged-manifests", "delete")
    pusher = Pusher(server, rng)
    shared = [rng.randbytes(20_000), rng.randbytes(5_000)]
    pusher.image(f"{KEEP}/base", "v1", shared)
    crashed: dict[str, int] = {}
    for n in range(ROUNDS):
        where = f"round {n}"
        make_garbage(server, pusher, ids, shared, n)
        point = CRASH_POINTS[n % len(CRASH_POINTS)] if n < len(CRASH_POINTS) else rng.choice(CRASH_POINTS)
        # Both registries pass the blob points; only one has manifests to delete or objects to sweep.
        times = rng.randint(1, 2) if point in TWICE else 1
        server.extra_env["CARGOBAY_CRASH_AT"] = f"{point}:{times}"
        try:
            result = server.cli("gc", "--grace", "0", check=False)
        finally:
            del server.extra_env["CARGOBAY_CRASH_AT"]
        assert result.returncode in (0, EXIT_CODE), result.stderr[-2000:]
        if result.returncode == EXIT_CODE:
            crashed[point] = crashed.get(point, 0) + 1
        check_referenced(server, pusher, f"{where}, after a crash at {point}")
        finished = server.cli("gc", "--grace", "0")
        assert "freed" in finished.stdout
        check_referenced(server, pusher, f"{where}, after the next run")
        check_clean(server, f"{where}, after the next run")
    assert set(crashed) == set(CRASH_POINTS), (
        f"crash points never reached: {set(CRASH_POINTS) - set(crashed)}"
    )

    # A collection job's child process dies inside the run: the server serves on, the job is
    # retried and its run completes.
    make_garbage(server, pusher, ids, shared, ROUNDS)
    server.stop()
    server.extra_env.update(
        CARGOBAY_CRASH_AT="gc.rows_deleted",
        CARGOBAY_CRASH_ONCE=str(server.data_dir.parent / "crashed-once"),  # the retry's child lives
        CARGOBAY_GC_GRACE_SECONDS="0",
    )
    server.start()
    request_run(server, ids[KEEP])
    wait_for(lambda: job_runs(server, ids[KEEP]) == ["succeeded"], 90, "the retried run")
    assert server.process is not None and server.process.poll() is None, "the server died with its child"
    assert (server.data_dir.parent / "crashed-once").exists(), "the run's process never crashed"
    time.sleep(0.5)
    check_referenced(server, pusher, "after a run's process died and the job was retried")
    check_clean(server, "after a run's process died and the job was retried")

    # With collections inside the serving process, the server itself dies inside a collection job;
    # once restarted, the job's run is taken over and completes.
    make_garbage(server, pusher, ids, shared, ROUNDS + 1)
    server.stop()
    server.extra_env["CARGOBAY_GC_IN_CHILD_PROCESS"] = "false"
    del server.extra_env["CARGOBAY_CRASH_ONCE"]
    server.start()
    request_run(server, ids[KEEP])
    assert server.process is not None
    wait_for(lambda: server.process is not None and server.process.poll() is not None, 90, "the crash")
    assert server.process.returncode == EXIT_CODE
    del server.extra_env["CARGOBAY_CRASH_AT"]
    server.start()
    pusher = Pusher(server, rng)
    check_referenced(server, pusher, "after the server died in a collection job")

    def run_done() -> bool:
        return job_runs(server, ids[KEEP]) == ["succeeded", "succeeded"]

    wait_for(run_done, 90, "the run, taken over after the crash")
    time.sleep(0.5)
    check_clean(server, "after the run was taken over")
