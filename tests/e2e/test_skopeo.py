"""skopeo against a live server: copy in and out with credentials over plain HTTP, inspect,
list tags, delete, and multi-arch indexes with ``--all``."""

from __future__ import annotations

import json
import random
from pathlib import Path

from tests.support.clients import ClientEnv
from tests.support.images import (
    OCI_INDEX,
    OCI_MANIFEST,
    layout_blobs,
    make_image,
    make_index,
    write_oci_layout,
)
from tests.support.server import Server
from tests.support.v2 import V2, assert_error

TLS = "--tls-verify=false"


def _creds(server: Server) -> str:
    return f"{server.admin_user}:{server.admin_password}"


def _skopeo(clients: ClientEnv, *args: str) -> str:
    return clients.run("skopeo", "--insecure-policy", *args).stdout


def _copy(clients: ClientEnv, server: Server, source: str, destination: str, *extra: str) -> None:
    creds = []
    if source.startswith("docker://"):
        creds += ["--src-creds", _creds(server), "--src-tls-verify=false"]
    if destination.startswith("docker://"):
        creds += ["--dest-creds", _creds(server), "--dest-tls-verify=false"]
    _skopeo(clients, "copy", "--retry-times", "0", *creds, *extra, source, destination)


def test_copy_in_and_out_keeps_every_blob(
    server: Server, v2: V2, repo: str, clients: ClientEnv, tmp_path: Path, rng: random.Random
) -> None:
    image = make_image(rng, layer_sizes=[0, 1000, 200_000, 3 * 1024 * 1024])
    source = write_oci_layout(tmp_path / "source", {"v1": image})
    _copy(clients, server, f"oci:{source}:v1", f"docker://{server.host}/{repo}:v1")

    pushed = v2.manifest(repo, "v1")
    assert pushed.content == image.manifest.data  # no conversion: the digest survives the trip
    for blob in image.blobs:
        assert v2.blob(repo, blob.digest).content == blob.data

    back = tmp_path / "back"
    _copy(clients, server, f"docker://{server.host}/{repo}:v1", f"oci:{back}:v1")
    assert layout_blobs(back) == layout_blobs(source)
    index = json.loads((back / "index.json").read_text())
    assert [m["digest"] for m in index["manifests"]] == [image.digest]

    directory = tmp_path / "dir"
    _copy(clients, server, f"docker://{server.host}/{repo}:v1", f"dir:{directory}")
    assert (directory / "manifest.json").read_bytes() == image.manifest.data
    for blob in image.blobs:
        assert (directory / blob.digest.split(":", 1)[1]).read_bytes() == blob.data


def test_inspect_list_tags_and_delete(
    server: Server, v2: V2, repo: str, clients: ClientEnv, tmp_path: Path, rng: random.Random
) -> None:
    image = make_image(rng, layers=2, architecture="arm64")
    source = write_oci_layout(tmp_path / "source", {"v1": image})
    target = f"docker://{server.host}/{repo}"
    for tag in ("v1", "v2", "latest"):
        _copy(clients, server, f"oci:{source}:v1", f"{target}:{tag}")
    creds = ("--creds", _creds(server), TLS)

    inspected = json.loads(_skopeo(clients, "inspect", *creds, f"{target}:v1"))
    assert inspected["Digest"] == image.digest
    assert inspected["Architecture"] == "arm64"
    assert inspected["Os"] == "linux"
    assert inspected["Layers"] == [layer.digest for layer in image.layers]
    assert sorted(inspected["RepoTags"]) == ["latest", "v1", "v2"]
    assert _skopeo(clients, "inspect", "--raw", *creds, f"{target}:v2").encode() == image.manifest.data
    config = _skopeo(clients, "inspect", "--config", "--raw", *creds, f"{target}:v1").encode()
    assert config == image.config.data

    tags = json.loads(_skopeo(clients, "list-tags", *creds, target))
    assert tags == {"Repository": f"{server.host}/{repo}", "Tags": ["latest", "v1", "v2"]}

    _skopeo(clients, "delete", *creds, f"{target}@{image.digest}")
    assert v2.tags(repo) == []
    assert_error(v2.manifest(repo, "v1"), 404, "MANIFEST_UNKNOWN")
    assert_error(v2.manifest(repo, image.digest), 404, "MANIFEST_UNKNOWN")


def test_multi_arch_index_copied_with_all(
    server: Server, v2: V2, repo: str, clients: ClientEnv, tmp_path: Path, rng: random.Random
) -> None:
    images = [make_image(rng, layers=2, architecture=arch) for arch in ("arm64", "amd64", "s390x")]
    index = make_index(images)
    source = write_oci_layout(tmp_path / "source", {"multi": index})
    target = f"docker://{server.host}/{repo}:multi"
    _copy(clients, server, f"oci:{source}:multi", target, "--all")

    assert v2.manifest(repo, "multi", accept=OCI_INDEX).content == index.manifest.data
    for image in images:
        assert v2.manifest(repo, image.digest).content == image.manifest.data

    back = tmp_path / "back"
    _copy(clients, server, target, f"oci:{back}:multi", "--all")
    assert layout_blobs(back) == layout_blobs(source)

    single = tmp_path / "single"
    _copy(
        clients, server, target, f"oci:{single}:amd64", "--override-arch", "amd64", "--override-os", "linux"
    )
    manifest = json.loads((single / "index.json").read_text())["manifests"][0]
    assert manifest["mediaType"] == OCI_MANIFEST
    assert manifest["digest"] == images[1].digest


def test_copy_between_repositories_of_the_registry(
    server: Server, v2: V2, repo: str, registry: str, clients: ClientEnv, tmp_path: Path, rng: random.Random
) -> None:
    image = make_image(rng, layers=3)
    v2.push_image(repo, image, "v1")
    other = f"{registry}/skopeo-copy/{rng.getrandbits(32):x}"
    _copy(clients, server, f"docker://{server.host}/{repo}:v1", f"docker://{server.host}/{other}:copied")
    assert v2.manifest(other, "copied").content == image.manifest.data
    for blob in image.blobs:
        assert v2.blob(other, blob.digest).content == blob.data
