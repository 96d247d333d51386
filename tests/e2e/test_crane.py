"""crane against a live server (logged in with ``crane auth login``, plain HTTP): append, push,
tag, list, catalog, pull, manifest, blob, copy, index append and delete."""

from __future__ import annotations

import json
import random
import tarfile
from pathlib import Path

import pytest

from tests.support.clients import ClientEnv
from tests.support.images import (
    DOCKER_MANIFEST,
    OCI_INDEX,
    layout_blobs,
    make_image,
    sha256,
    tar_layer,
    write_oci_layout,
)
from tests.support.server import Server
from tests.support.v2 import V2, assert_error


@pytest.fixture
def crane(server: Server, clients: ClientEnv) -> ClientEnv:
    clients.run("crane", "auth", "login", server.host, "-u", server.admin_user, "-p", server.admin_password)
    config = json.loads((clients.docker_config / "config.json").read_text())
    assert server.host in config["auths"]
    return clients


def _crane(clients: ClientEnv, *args: str) -> str:
    return clients.run("crane", "--insecure", *args).stdout.strip()


def _digest_of(output: str) -> str:
    """``host/repo@sha256:…`` as crane prints it after a push."""
    return output.strip().splitlines()[-1].rsplit("@", 1)[1]


def test_append_tag_list_read_and_delete(
    server: Server, v2: V2, repo: str, crane: ClientEnv, tmp_path: Path, rng: random.Random
) -> None:
    ref = f"{server.host}/{repo}"
    first, second = tmp_path / "first.tar.gz", tmp_path / "second.tar.gz"
    first.write_bytes(tar_layer(rng, [1000, 50_000]))
    second.write_bytes(tar_layer(rng, [2 * 1024 * 1024]))
    v1 = _digest_of(_crane(crane, "append", "-f", str(first), "-t", f"{ref}:v1"))
    v2_digest = _digest_of(_crane(crane, "append", "-b", f"{ref}:v1", "-f", str(second), "-t", f"{ref}:v2"))

    manifest = json.loads(_crane(crane, "manifest", f"{ref}:v2"))
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert [layer["digest"] for layer in manifest["layers"]] == [
        sha256(first.read_bytes()),
        sha256(second.read_bytes()),
    ]
    assert v2.manifest(repo, "v2").headers["docker-content-digest"] == v2_digest
    layer = crane.output("crane", "--insecure", "blob", f"{ref}@{sha256(second.read_bytes())}")
    assert layer == second.read_bytes()
    config = json.loads(_crane(crane, "config", f"{ref}:v2"))
    assert config["rootfs"]["type"] == "layers"

    _crane(crane, "tag", f"{ref}:v2", "stable")
    assert _crane(crane, "ls", ref).splitlines() == ["stable", "v1", "v2"]
    assert _crane(crane, "digest", f"{ref}:stable") == v2_digest
    assert repo in _crane(crane, "catalog", server.host).splitlines()

    tarball = tmp_path / "image.tar"
    _crane(crane, "pull", f"{ref}:v2", str(tarball))
    with tarfile.open(tarball) as tar:
        assert any(name.endswith(".tar.gz") or name.startswith("sha256:") for name in tar.getnames())
    layout = tmp_path / "layout"
    _crane(crane, "pull", "--format", "oci", f"{ref}:v2", str(layout))
    blobs = layout_blobs(layout)
    assert blobs[sha256(second.read_bytes())] == second.read_bytes()
    assert v2_digest in blobs

    _crane(crane, "delete", f"{ref}@{v1}")
    assert _crane(crane, "ls", ref).splitlines() == ["stable", "v2"]
    assert_error(v2.manifest(repo, v1), 404, "MANIFEST_UNKNOWN")


def test_push_of_a_layout_and_a_tarball(
    server: Server, v2: V2, repo: str, registry: str, crane: ClientEnv, tmp_path: Path, rng: random.Random
) -> None:
    image = make_image(rng, layer_sizes=[100, 300_000, 1_500_000])
    layout = write_oci_layout(tmp_path / "layout", {"v1": image})
    ref = f"{server.host}/{repo}"
    assert _digest_of(_crane(crane, "push", str(layout), f"{ref}:v1")) == image.digest
    assert v2.manifest(repo, "v1").content == image.manifest.data

    tarball = tmp_path / "image.tar"
    _crane(crane, "pull", f"{ref}:v1", str(tarball))
    other = f"{registry}/crane-push/{rng.getrandbits(32):x}"
    _crane(crane, "push", str(tarball), f"{server.host}/{other}:from-tarball")
    pushed = json.loads(_crane(crane, "manifest", f"{server.host}/{other}:from-tarball"))
    assert pushed["config"]["digest"] == image.config.digest
    assert [layer["digest"] for layer in pushed["layers"]] == [layer.digest for layer in image.layers]
    for blob in image.blobs:
        assert v2.blob(other, blob.digest).content == blob.data


def test_copy_between_repositories(
    server: Server, v2: V2, repo: str, registry: str, crane: ClientEnv, rng: random.Random
) -> None:
    image = make_image(rng, layers=3)
    v2.push_image(repo, image, "v1")
    other = f"{registry}/crane-copy/{rng.getrandbits(32):x}"
    _crane(crane, "copy", f"{server.host}/{repo}:v1", f"{server.host}/{other}:copied")
    assert v2.manifest(other, "copied").content == image.manifest.data
    for blob in image.blobs:
        assert v2.blob(other, blob.digest).content == blob.data


def test_index_append_then_skopeo_pulls_all(
    server: Server, v2: V2, repo: str, crane: ClientEnv, tmp_path: Path, rng: random.Random
) -> None:
    images = [make_image(rng, layers=2, architecture=arch) for arch in ("amd64", "arm64")]
    ref = f"{server.host}/{repo}"
    for image in images:
        v2.push_image(repo, image, image.platform["architecture"])
    _crane(
        crane,
        "index",
        "append",
        "-m",
        f"{ref}@{images[0].digest}",
        "-m",
        f"{ref}@{images[1].digest}",
        "-t",
        f"{ref}:multi",
    )
    index = json.loads(_crane(crane, "manifest", f"{ref}:multi"))
    assert index["mediaType"] == OCI_INDEX
    assert [m["digest"] for m in index["manifests"]] == [image.digest for image in images]
    assert [m["platform"]["architecture"] for m in index["manifests"]] == ["amd64", "arm64"]

    out = tmp_path / "out"
    crane.run(
        "skopeo",
        "--insecure-policy",
        "copy",
        "--all",
        "--src-creds",
        f"{server.admin_user}:{server.admin_password}",
        "--src-tls-verify=false",
        f"docker://{ref}:multi",
        f"oci:{out}:multi",
    )
    blobs = layout_blobs(out)
    for image in images:
        assert blobs[image.digest] == image.manifest.data
        for blob in image.blobs:
            assert blobs[blob.digest] == blob.data
