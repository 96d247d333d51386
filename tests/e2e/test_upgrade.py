"""A data directory written by the release before storage writers (``tests/fixtures/``, made by
``make_legacy_datadir.py`` with that release) is read and written after the upgrade: committed blobs
sealed and plaintext, manifests, and its uploads in progress end cleanly as BLOB_UPLOAD_UNKNOWN."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import Server
from tests.support.v2 import V2, assert_error

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
ACCEPT = "application/vnd.oci.image.manifest.v1+json"

pytestmark = pytest.mark.slow


@pytest.fixture
def legacy(tmp_path: Path) -> tuple[Server, dict[str, Any]]:
    with tarfile.open(FIXTURES / "legacy-datadir.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    facts = json.loads((FIXTURES / "legacy-datadir.json").read_text())
    return Server(tmp_path / "data", admin_user=facts["user"], admin_password=facts["password"]), facts


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def assert_image(v2: V2, repo: str, tag: str, manifest: str, layer: str) -> None:
    response = v2.get(f"/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
    assert response.status_code == 200, response.text
    assert sha256(response.content) == manifest
    for descriptor in [json.loads(response.content)["config"], *json.loads(response.content)["layers"]]:
        blob = v2.get(f"/v2/{repo}/blobs/{descriptor['digest']}")
        assert blob.status_code == 200, blob.text
        assert sha256(blob.content) == descriptor["digest"]
    assert layer in response.text


def test_the_earlier_release_data_dir_is_read_and_written(legacy: tuple[Server, dict[str, Any]]) -> None:
    server, facts = legacy
    storage = server.data_dir / "storage"
    with server, V2(server) as v2:
        plain, sealed = facts["plain"], facts["sealed"]
        assert_image(v2, plain["repo"], plain["tag"], plain["manifest"], plain["layer"])
        assert_image(v2, sealed["repo"], sealed["tag"], sealed["manifest"], sealed["layer"])
        chunked = v2.get(f"/v2/{facts['chunked']['repo']}/blobs/{facts['chunked']['blob']}")
        assert sha256(chunked.content) == facts["chunked"]["blob"]
        ranged = v2.get(f"/v2/{plain['repo']}/blobs/{plain['layer']}", headers={"Range": "bytes=0-63"})
        assert ranged.content.hex() == plain["layer_hex"]

        for upload in (facts["plain_upload"], facts["sealed_upload"]):
            assert_error(v2.get(upload["location"]), 404, "BLOB_UPLOAD_UNKNOWN")
            size = upload["size"]
            patched = v2.request(
                "PATCH", upload["location"], content=b"x", headers={"Content-Range": f"{size}-{size}"}
            )
            assert_error(patched, 404, "BLOB_UPLOAD_UNKNOWN")

        data = bytes(range(256)) * 5000
        location = v2.start_upload(sealed["repo"])
        for start, end in ((0, 700_000), (700_000, len(data))):
            response = v2.request(
                "PATCH", location, content=data[start:end], headers={"Content-Range": f"{start}-{end - 1}"}
            )
            assert response.status_code == 202, response.text
            location = response.headers["location"]
        done = v2.request("PUT", location, params={"digest": sha256(data)})
        assert done.status_code == 201, done.text
        assert v2.get(f"/v2/{sealed['repo']}/blobs/{sha256(data)}").content == data

    plaintext = [p for p in (storage / "objects").rglob("*") if p.is_file() and not p.name.endswith(".cbe")]
    assert plaintext, "the blobs written with encryption off are still stored as they were"
    server.cli("migrate")
    assert not [p for p in (storage / "objects").rglob("*") if p.is_file() and not p.name.endswith(".cbe")]
    with server, V2(server) as v2:
        assert_image(v2, plain["repo"], plain["tag"], plain["manifest"], plain["layer"])
