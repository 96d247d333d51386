"""Garbage collection end to end: two images sharing a base layer pushed with crane, one repository
deleted through the management API, then a collection, once by the registry's weekly schedule (a
window a few seconds ahead, with the test-only grace period of 0) and once by ``cargobay gc`` while
the server keeps serving. The deleted image's own layers leave the disk and ``storageUsage``; the
shared layer stays, and the other image still pulls and verifies with crane."""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.support.clients import ClientEnv
from tests.support.images import sha256, tar_layer
from tests.support.server import Server, wait_for

pytestmark = pytest.mark.timeout(300)
WEEK = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


@pytest.fixture(scope="module")
def gc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("gc-server")
    with Server(
        data_dir=base / "data",
        extra_env={"CARGOBAY_GC_GRACE_SECONDS": "0", "CARGOBAY_GC_IN_CHILD_PROCESS": "true"},
    ) as server:
        yield server


@pytest.fixture
def crane(gc_server: Server, clients: ClientEnv) -> ClientEnv:
    clients.run(
        "crane", "auth", "login", gc_server.host, "-u", gc_server.admin_user, "-p", gc_server.admin_password
    )
    return clients


def _rows(server: Server, query: str, *params: object) -> list[tuple[object, ...]]:
    path = server.data_dir / "cargobay.db"
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)) as db:
        return db.execute(query, params).fetchall()


def _object_files(server: Server, digests: list[str]) -> dict[str, Path]:
    """Where each blob's bytes are on disk (sealed: ``.cbe``)."""
    found = {}
    for digest, key in _rows(server, "SELECT digest, object_key FROM blobs"):
        if digest in digests:
            found[str(digest)] = server.data_dir / "storage" / "objects" / f"{key}.cbe"
    assert set(found) == set(digests)
    assert all(path.is_file() for path in found.values())
    return found


class Setup:
    """A registry with ``keep`` and ``drop``, each an image of the shared base layer and its own."""

    def __init__(self, server: Server, crane: ClientEnv, tmp_path: Path, rng: random.Random) -> None:
        self.server = server
        self.crane = crane
        self.name = f"gc-{rng.getrandbits(32):08x}"
        self.registry_id = server.create_registry(self.name)
        self.http = httpx.Client(base_url=f"{server.url}/containerregistries", auth=server.auth, timeout=30)
        self.layers = {}
        for part, size in (("base", 300_000), ("keep", 120_000), ("drop", 200_000)):
            path = tmp_path / f"{part}.tar.gz"
            path.write_bytes(tar_layer(rng, [size]))
            self.layers[part] = path
        for repo in ("keep", "drop"):
            self.run(
                "append", "-f", str(self.layers["base"]), "-f", str(self.layers[repo]), "-t", self.ref(repo)
            )
        self.digests = {part: sha256(path.read_bytes()) for part, path in self.layers.items()}

    def ref(self, repo: str) -> str:
        return f"{self.server.host}/{self.name}/{repo}:v1"

    def run(self, *args: str) -> str:
        return self.crane.run("crane", "--insecure", *args).stdout.strip()

    def usage(self) -> int:
        body = self.http.get(f"/registries/{self.registry_id}").json()
        return int(body["properties"]["storageUsage"]["bytes"])

    def delete_drop(self) -> tuple[dict[str, Path], int, int]:
        by_digest = _object_files(self.server, list(self.digests.values()))
        files = {part: by_digest[digest] for part, digest in self.digests.items()}
        config = self.run("manifest", self.ref("drop"))
        before = self.usage()
        response = self.http.delete(f"/registries/{self.registry_id}/repositories/drop")
        assert response.status_code == 204
        return files, before, len(config)

    def check_collected(self, files: dict[str, Path], before: int) -> None:
        assert not files["drop"].exists(), "the deleted image's own layer is still on disk"
        assert files["base"].is_file() and files["keep"].is_file()
        dropped_layer = self.layers["drop"].stat().st_size
        assert self.usage() < before - dropped_layer  # its manifest, config and layer
        assert self.usage() == self.expected_usage()
        self.run("validate", "--remote", self.ref("keep"))  # every layer and the config verify
        pulled = self.crane.workdir / f"{self.name}.tar"
        self.run("pull", self.ref("keep"), str(pulled))
        assert pulled.stat().st_size > self.layers["base"].stat().st_size

    def expected_usage(self) -> int:
        (blobs,) = _rows(
            self.server, "SELECT COALESCE(SUM(size), 0) FROM blobs WHERE registry_id = ?", self.registry_id
        )
        (manifests,) = _rows(
            self.server,
            "SELECT COALESCE(SUM(size), 0) FROM manifests WHERE registry_id = ?",
            self.registry_id,
        )
        return int(str(blobs[0])) + int(str(manifests[0]))


def test_a_scheduled_window_frees_a_deleted_repository(
    gc_server: Server, crane: ClientEnv, tmp_path: Path, rng: random.Random
) -> None:
    setup = Setup(gc_server, crane, tmp_path, rng)
    files, before, _ = setup.delete_drop()
    # Ahead of the scheduler's next tick (every 10 s), which works the window out when it first sees it.
    at = datetime.now(UTC) + timedelta(seconds=15)
    schedule = {"days": WEEK, "time": at.strftime("%H:%M:%SZ")}
    response = setup.http.patch(
        f"/registries/{setup.registry_id}", json={"garbageCollectionSchedule": schedule}
    )
    assert response.status_code == 200, response.text

    def jobs() -> list[tuple[object, ...]]:
        return _rows(
            gc_server,
            "SELECT status, payload FROM jobs WHERE kind = 'gc.registry' AND payload LIKE ?",
            f"%{setup.registry_id}%",
        )

    def collected() -> bool:
        rows = _rows(
            gc_server,
            "SELECT state FROM gc_runs WHERE registry_id = ? AND trigger = 'schedule'",
            setup.registry_id,
        )
        # The run's row is written by its child process, the job's by the server once the child ends.
        return bool(rows) and rows[-1][0] == "succeeded" and [job[0] for job in jobs()] == ["succeeded"]

    wait_for(collected, timeout=90, what="a scheduled garbage collection")
    setup.check_collected(files, before)
    ((_, payload),) = jobs()
    assert "window" in str(payload)


def test_the_cli_collects_while_the_server_serves(
    gc_server: Server, crane: ClientEnv, tmp_path: Path, rng: random.Random
) -> None:
    setup = Setup(gc_server, crane, tmp_path, rng)
    files, before, _ = setup.delete_drop()
    dry = gc_server.cli("gc", "--registry", setup.name, "--dry-run", "--grace", "0")
    assert f"{setup.name}: would free 2 blobs" in dry.stdout
    assert files["drop"].exists()
    started = time.monotonic()
    result = gc_server.cli("gc", "--registry", setup.name, "--grace", "0")
    assert f"{setup.name}: freed 2 blobs" in result.stdout, result.stdout + result.stderr
    assert time.monotonic() - started < 60
    setup.check_collected(files, before)
    runs = _rows(
        gc_server,
        "SELECT trigger, dry_run, state, blobs_freed FROM gc_runs WHERE registry_id = ?",
        setup.registry_id,
    )
    assert [(r[0], bool(r[1]), r[2], r[3]) for r in runs] == [
        ("cli", True, "succeeded", 2),
        ("cli", False, "succeeded", 2),
    ]
