"""A server whose blobs live in S3 (versitygw), encryption on: crane pushes and pulls, a chunked
upload moves between two server processes mid-way, and the bucket holds sealed bytes only."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cargobay.storage.s3 import MIN_PART
from tests.support.clients import ClientEnv
from tests.support.images import layout_blobs, sha256, tar_layer
from tests.support.s3 import S3Server
from tests.support.server import Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket("cargobay")


def s3_backed(s3_server: S3Server, bucket: str, data_dir: Path) -> Server:
    return Server(
        data_dir=data_dir,
        extra_env={
            "CARGOBAY_STORAGE_URL": s3_server.url(bucket, "registry", part_size=str(MIN_PART)),
            **s3_server.env,
        },
    )


@pytest.fixture(scope="module")
def s3_registry(
    s3_server: S3Server, bucket: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with s3_backed(s3_server, bucket, tmp_path_factory.mktemp("s3") / "data") as server:
        server.create_registry("objects")
        yield server


def test_crane_pushes_and_pulls_through_s3_with_encryption(
    s3_registry: Server, s3_server: S3Server, bucket: str, clients: ClientEnv, tmp_path: Path
) -> None:
    server = s3_registry
    rng = random.Random(7)
    clients.run("crane", "auth", "login", server.host, "-u", server.admin_user, "-p", server.admin_password)
    ref = f"{server.host}/objects/app"
    small, large = tmp_path / "small.tar.gz", tmp_path / "large.tar.gz"
    small.write_bytes(tar_layer(rng, [1000, 30_000]))
    large.write_bytes(tar_layer(rng, [13 * 1024 * 1024]))  # three parts of 5 MiB (the last shorter)
    clients.run("crane", "--insecure", "append", "-f", str(small), "-t", f"{ref}:v1")
    clients.run("crane", "--insecure", "append", "-b", f"{ref}:v1", "-f", str(large), "-t", f"{ref}:v2")

    layout = tmp_path / "layout"
    clients.run("crane", "--insecure", "pull", "--format", "oci", f"{ref}:v2", str(layout))
    blobs = layout_blobs(layout)
    assert blobs[sha256(large.read_bytes())] == large.read_bytes()
    assert blobs[sha256(small.read_bytes())] == small.read_bytes()
    manifest = json.loads(clients.run("crane", "--insecure", "manifest", f"{ref}:v2").stdout)
    assert [layer["size"] for layer in manifest["layers"]] == [small.stat().st_size, large.stat().st_size]

    stored = [p for p in (s3_server.root / "data" / bucket).rglob("*") if p.is_file()]
    assert stored and all(p.name.endswith(".cbe") for p in stored), stored
    marker = large.read_bytes()[1000:1064]
    assert not any(marker in p.read_bytes() for p in stored)


def test_a_chunked_upload_continues_on_another_process(
    s3_registry: Server, s3_server: S3Server, bucket: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Two servers on one database and one bucket (as behind a load balancer): each chunk goes to
    the other one, and nothing is read back to finish."""
    first = s3_registry
    second = Server(data_dir=first.data_dir, extra_env=first.extra_env)
    data = random.Random(9).randbytes(2 * MIN_PART + 300_001)
    cuts = [0, 100_000, MIN_PART + 7, MIN_PART + 200_000, len(data)]
    with second:
        started = httpx.post(f"{first.url}/v2/objects/moving/blobs/uploads/", auth=first.auth)
        assert started.status_code == 202, started.text
        location = started.headers["location"]
        for i, (start, end) in enumerate(itertools.pairwise(cuts)):
            target = (first, second)[i % 2]
            response = httpx.patch(
                f"{target.url}{location}",
                content=data[start:end],
                headers={"Content-Range": f"{start}-{end - 1}", "Content-Type": "application/octet-stream"},
                auth=target.auth,
                timeout=60,
            )
            assert response.status_code == 202, response.text
            assert response.headers["range"] == f"0-{end - 1}"
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        done = httpx.put(f"{second.url}{location}", params={"digest": digest}, auth=second.auth, timeout=60)
        assert done.status_code == 201, done.text
        pulled = httpx.get(f"{first.url}/v2/objects/moving/blobs/{digest}", auth=first.auth, timeout=60)
        assert pulled.status_code == 200 and pulled.content == data
