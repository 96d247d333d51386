"""Faults answered, not suffered: a full disk (a small tmpfs holding the whole installation) and a
PostgreSQL outage. Clients get a clear error with Retry-After, deletes keep working on a full disk,
the log gets one line per failure and no traceback, and the server recovers without a restart."""

from __future__ import annotations

import os
import random
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.authz import make_token, repository_scope
from tests.support.images import sha256
from tests.support.peers import in_ci
from tests.support.postgres import PostgresServer, find_binaries
from tests.support.server import Server, wait_for
from tests.support.v2 import V2

pytestmark = pytest.mark.slow


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB tmpfs: room for the installation and a few blobs."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here ({done.stderr.strip()}); the disk-full test needs root"
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def api_client(server: Server) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/containerregistries", auth=server.auth, timeout=30)


def _push_until_full(client: V2, repo: str, rng: random.Random) -> tuple[list[str], httpx.Response]:
    pushed = []
    for _ in range(40):
        data = rng.randbytes(4 * 1024 * 1024)
        response = client.request(
            "POST", f"/v2/{repo}/blobs/uploads/", params={"digest": sha256(data)}, content=data
        )
        if response.status_code != 201:
            return pushed, response
        pushed.append(sha256(data))
    raise AssertionError("the disk never filled up")


def test_a_full_disk_is_a_clear_error_deletes_work_and_writes_come_back(small_disk: Path) -> None:
    env = {"CARGOBAY_LOG_LEVEL": "info", "CARGOBAY_SPACE_RESERVE_MB": "8"}
    with Server(data_dir=small_disk / "data", extra_env=env) as server:
        full_id = server.create_registry("full")
        with api_client(server) as http:
            token = make_token(http, full_id, "doomed", [repository_scope("*", ["pull"])])
        rng = random.Random(1)
        with V2(server) as client:
            client.push_blob("full/other/app", b"a small blob in a second repository")
            pushed, refused = _push_until_full(client, "full/team/app", rng)
            assert refused.status_code == 507, refused.text
            assert refused.json()["errors"][0]["code"] == "INSUFFICIENT_STORAGE"
            assert "storage is full" in refused.json()["errors"][0]["message"]
            assert refused.headers["retry-after"] == "5"
            ready = httpx.get(f"{server.url}/readyz")
            assert ready.status_code == 503 and "storage full" in ready.json()["reason"]
            mgmt = httpx.post(
                f"{server.url}/containerregistries/registries",
                json={"properties": {"name": "another", "location": "de/fra"}},
                auth=server.auth,
            )
            assert mgmt.status_code == 507 and mgmt.json()["httpStatus"] == 507
            # What was stored before the disk filled up is intact.
            assert client.blob("full/team/app", pushed[0]).content is not None
            assert sha256(client.blob("full/team/app", pushed[0]).content) == pushed[0]
            # Deletes work on the full disk: a token, a repository, then the registry with its bytes.
            with api_client(server) as http:
                assert http.delete(f"/registries/{full_id}/tokens/{token.id}").status_code == 204
                assert http.delete(f"/registries/{full_id}/repositories/other%2Fapp").status_code == 204
                deleted = http.delete(f"/registries/{full_id}")
                assert deleted.status_code == 204, deleted.text
            wait_for(lambda: httpx.get(f"{server.url}/readyz").status_code == 200, 30, "writes to come back")
            server.create_registry("again")
            data = rng.randbytes(1024 * 1024)
            ok = client.request(
                "POST", "/v2/again/team/app/blobs/uploads/", params={"digest": sha256(data)}, content=data
            )
            assert ok.status_code == 201, ok.text
        log = (server.data_dir.parent / f"server-{server.port}.log").read_text()
    assert "storage_full" in log and "Traceback" not in log, log[log.find("Traceback") - 2000 :][:6000]


def test_a_database_outage_is_a_503_then_the_server_recovers(tmp_path: Path) -> None:
    bindir = find_binaries()
    if bindir is None:
        if in_ci():
            pytest.fail("PostgreSQL server binaries not found")
        pytest.skip("PostgreSQL server binaries not found")
    pg = PostgresServer(bindir).start()
    try:
        url = pg.url(pg.create_database("outage"))
        env = {"CARGOBAY_DATABASE_URL": url, "CARGOBAY_LOG_LEVEL": "info", "CARGOBAY_ACCESS_LOG": "false"}
        with Server(data_dir=tmp_path / "data", extra_env=env, workers=2) as server:
            server.create_registry("pgdown")
            image_blob = os.urandom(2048)
            with V2(server) as client:
                digest = client.push_blob("pgdown/team/app", image_blob)
                log_path = server.data_dir.parent / f"server-{server.port}.log"
                lines_before = len(log_path.read_text().splitlines())
                pg.pause()
                failures = 0
                try:
                    for _ in range(20):
                        for response in (
                            client.head(f"/v2/pgdown/team/app/blobs/{digest}"),
                            httpx.get(f"{server.url}/containerregistries/registries", auth=server.auth),
                        ):
                            assert response.status_code == 503, response.text
                            assert response.headers["retry-after"] == "5"
                            failures += 1
                        time.sleep(0.1)
                    assert client.head(f"/v2/pgdown/team/app/blobs/{digest}").status_code == 503
                    body = client.get(f"/v2/pgdown/team/app/blobs/{digest}").json()
                    assert body["errors"][0]["code"] == "UNAVAILABLE"
                    ready = httpx.get(f"{server.url}/readyz")
                    assert ready.status_code == 503 and ready.json()["reason"] == "database unavailable"
                    failures += 2
                finally:
                    pg.resume()
                wait_for(
                    lambda: client.head(f"/v2/pgdown/team/app/blobs/{digest}").status_code == 200,
                    30,
                    "recovery without a restart",
                )
                assert client.blob("pgdown/team/app", digest).content == image_blob
                log = log_path.read_text().splitlines()[lines_before:]
        assert "Traceback" not in "\n".join(log)
        assert len(log) <= failures + 20, "\n".join(log[-40:])  # one line per failure, a few more
    finally:
        pg.stop()
