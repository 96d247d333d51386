"""Manifest pushes that must be refused with the exact OCI error, leaving storage as it was."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.support.images import (
    DOCKER_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Image,
    canonical,
    make_image,
    make_index,
    sha256,
)
from tests.support.server import Server
from tests.support.v2 import V2, assert_error, snapshot

MiB = 1024 * 1024
GOOD_DIGEST = sha256(b"not pushed anywhere")


@pytest.fixture
def pushed(v2: V2, repo: str, rng: random.Random) -> tuple[str, Image]:
    """A repository holding one image, tagged ``v1``."""
    image = make_image(rng, layers=2, max_file_size=4096)
    v2.push_image(repo, image, "v1")
    return repo, image


@contextmanager
def unchanged(server: Server, v2: V2, repo: str, image: Image) -> Iterator[None]:
    """Storage, metadata and the repository's tag ``v1`` are exactly as before the block."""
    before = snapshot(server)
    yield
    assert snapshot(server) == before
    assert v2.tags(repo) == ["v1"]
    response = v2.manifest(repo, "v1")
    assert response.status_code == 200
    assert response.content == image.manifest.data


def _manifest(image: Image, **changes: Any) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(image.manifest.data)
    for key, value in changes.items():
        if value is _DROP:
            doc.pop(key, None)
        else:
            doc[key] = value
    return doc


_DROP = object()


def _bad_layer(image: Image, **changes: Any) -> dict[str, Any]:
    layer = {**image.layers[0].descriptor(), **changes}
    return _manifest(image, layers=[layer])


# (id, body maker, Content-Type, expected OCI code)
BAD_BODIES: list[tuple[str, Any, str, str]] = [
    ("truncated-json", lambda i: i.manifest.data[:-7], OCI_MANIFEST, "MANIFEST_INVALID"),
    ("not-utf8", lambda i: b"\xff\xfe{" + i.manifest.data, OCI_MANIFEST, "MANIFEST_INVALID"),
    ("json-array", lambda i: b"[" + i.manifest.data + b"]", OCI_MANIFEST, "MANIFEST_INVALID"),
    ("json-string", lambda i: b'"manifest"', OCI_MANIFEST, "MANIFEST_INVALID"),
    ("schema-version-1", lambda i: _manifest(i, schemaVersion=1), OCI_MANIFEST, "MANIFEST_INVALID"),
    ("schema-version-3", lambda i: _manifest(i, schemaVersion=3), OCI_MANIFEST, "MANIFEST_INVALID"),
    ("schema-version-string", lambda i: _manifest(i, schemaVersion="2"), OCI_MANIFEST, "MANIFEST_INVALID"),
    ("schema-version-missing", lambda i: _manifest(i, schemaVersion=_DROP), OCI_MANIFEST, "MANIFEST_INVALID"),
    ("config-missing", lambda i: _manifest(i, config=_DROP), OCI_MANIFEST, "MANIFEST_INVALID"),
    ("config-not-object", lambda i: _manifest(i, config="sha256:abc"), OCI_MANIFEST, "MANIFEST_INVALID"),
    ("config-null", lambda i: _manifest(i, config=None), OCI_MANIFEST, "MANIFEST_INVALID"),
    ("layers-not-array", lambda i: _manifest(i, layers={"a": 1}), OCI_MANIFEST, "MANIFEST_INVALID"),
    ("docker-layers-missing", None, DOCKER_MANIFEST, "MANIFEST_INVALID"),
    ("layer-digest-garbage", lambda i: _bad_layer(i, digest="sha256:xyz"), OCI_MANIFEST, "DIGEST_INVALID"),
    ("layer-digest-no-algorithm", lambda i: _bad_layer(i, digest="abc"), OCI_MANIFEST, "DIGEST_INVALID"),
    (
        "layer-digest-uppercase-hex",
        lambda i: _bad_layer(i, digest=i.layers[0].digest.upper().replace("SHA256", "sha256")),
        OCI_MANIFEST,
        "DIGEST_INVALID",
    ),
    (
        "layer-digest-md5",
        lambda i: _bad_layer(i, digest="md5:d41d8cd98f00b204e9800998ecf8427e"),
        OCI_MANIFEST,
        "DIGEST_INVALID",
    ),
    ("layer-digest-number", lambda i: _bad_layer(i, digest=12), OCI_MANIFEST, "MANIFEST_INVALID"),
    ("layer-size-negative", lambda i: _bad_layer(i, size=-1), OCI_MANIFEST, "MANIFEST_INVALID"),
    ("layer-size-string", lambda i: _bad_layer(i, size="12"), OCI_MANIFEST, "MANIFEST_INVALID"),
    ("layer-size-float", lambda i: _bad_layer(i, size=1.5), OCI_MANIFEST, "MANIFEST_INVALID"),
    ("layer-size-bool", lambda i: _bad_layer(i, size=True), OCI_MANIFEST, "MANIFEST_INVALID"),
    ("layer-size-missing", lambda i: _bad_layer(i, size=None), OCI_MANIFEST, "MANIFEST_INVALID"),
    ("layer-media-type-empty", lambda i: _bad_layer(i, mediaType=""), OCI_MANIFEST, "MANIFEST_INVALID"),
    (
        "annotations-not-strings",
        lambda i: _manifest(i, annotations={"a": 1}),
        OCI_MANIFEST,
        "MANIFEST_INVALID",
    ),
    ("subject-not-object", lambda i: _manifest(i, subject="sha256:abc"), OCI_MANIFEST, "MANIFEST_INVALID"),
    ("artifact-type-empty", lambda i: _manifest(i, artifactType=""), OCI_MANIFEST, "MANIFEST_INVALID"),
    ("empty-body", lambda i: b"", OCI_MANIFEST, "MANIFEST_INVALID"),
    ("deeply-nested-arrays", lambda i: b"[" * 100_000 + b"]" * 100_000, OCI_MANIFEST, "MANIFEST_INVALID"),
    (
        "deeply-nested-objects",
        lambda i: b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
        OCI_MANIFEST,
        "MANIFEST_INVALID",
    ),
    ("unknown-content-type", lambda i: _manifest(i, mediaType=_DROP), "application/json", "MANIFEST_INVALID"),
    (
        "unknown-media-type-in-body",
        lambda i: _manifest(i, mediaType="application/vnd.example.manifest+json"),
        "application/vnd.example.manifest+json",
        "MANIFEST_INVALID",
    ),
    (
        "docker-schema1",
        lambda i: _manifest(i, mediaType=_DROP, schemaVersion=1),
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "MANIFEST_INVALID",
    ),
    ("media-type-vs-content-type", lambda i: _manifest(i), OCI_INDEX, "MANIFEST_INVALID"),
    (
        "media-type-vs-content-type-docker",
        lambda i: _manifest(i),
        DOCKER_MANIFEST,
        "MANIFEST_INVALID",
    ),
    (
        "docker-without-media-type",
        lambda i: _manifest(i, mediaType=_DROP),
        DOCKER_MANIFEST,
        "MANIFEST_INVALID",
    ),
    (
        "index-without-manifests",
        lambda i: {"schemaVersion": 2, "mediaType": OCI_INDEX},
        OCI_INDEX,
        "MANIFEST_INVALID",
    ),
    (
        "index-child-bad-digest",
        lambda i: {
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{**i.manifest.descriptor(), "digest": "sha256:1234"}],
        },
        OCI_INDEX,
        "DIGEST_INVALID",
    ),
]


def _docker_without_layers(image: Image) -> dict[str, Any]:
    config = {**image.config.descriptor(), "mediaType": "application/vnd.docker.container.image.v1+json"}
    return {"schemaVersion": 2, "mediaType": DOCKER_MANIFEST, "config": config}


def _body(maker: Any, image: Image) -> bytes:
    made = _docker_without_layers(image) if maker is None else maker(image)
    return made if isinstance(made, bytes) else canonical(made)


@pytest.mark.parametrize(
    ("maker", "content_type", "code"), [b[1:] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES]
)
def test_invalid_manifest_is_refused_and_changes_nothing(
    server: Server, v2: V2, pushed: tuple[str, Image], registry: str, maker: Any, content_type: str, code: str
) -> None:
    repo, image = pushed
    body = _body(maker, image)
    for target in (repo, f"{registry}/never/created"):
        for reference in ("v1", sha256(body)):
            with unchanged(server, v2, repo, image):
                response = v2.request(
                    "PUT",
                    f"/v2/{target}/manifests/{reference}",
                    content=body,
                    headers={"Content-Type": content_type},
                )
                assert_error(response, 400, code)


def test_manifest_not_matching_the_digest_in_the_url_is_digest_invalid(
    server: Server, v2: V2, pushed: tuple[str, Image]
) -> None:
    repo, image = pushed
    other = sha256(image.manifest.data + b" ")
    with unchanged(server, v2, repo, image):
        response = v2.request(
            "PUT",
            f"/v2/{repo}/manifests/{other}",
            content=image.manifest.data,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert_error(response, 400, "DIGEST_INVALID")


def test_manifest_pushed_by_sha512_digest_must_match_it(
    server: Server, v2: V2, pushed: tuple[str, Image]
) -> None:
    repo, image = pushed
    wrong = "sha512:" + "0" * 128
    with unchanged(server, v2, repo, image):
        response = v2.request(
            "PUT",
            f"/v2/{repo}/manifests/{wrong}",
            content=image.manifest.data,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert_error(response, 400, "DIGEST_INVALID")


def _oversize(image: Image) -> bytes:
    doc = _manifest(image, annotations={"padding": "x" * (4 * MiB)})
    body = canonical(doc)
    assert len(body) > 4 * MiB
    return body


def test_oversize_manifest_with_content_length_is_413_size_invalid(
    server: Server, v2: V2, pushed: tuple[str, Image]
) -> None:
    repo, image = pushed
    body = _oversize(image)
    with unchanged(server, v2, repo, image):
        response = v2.request(
            "PUT", f"/v2/{repo}/manifests/big", content=body, headers={"Content-Type": OCI_MANIFEST}
        )
        assert_error(response, 413, "SIZE_INVALID")


def test_oversize_manifest_streamed_without_length_is_413_size_invalid(
    server: Server, v2: V2, pushed: tuple[str, Image]
) -> None:
    repo, image = pushed
    body = _oversize(image)

    def chunks() -> Iterator[bytes]:
        for offset in range(0, len(body), 64 * 1024):
            yield body[offset : offset + 64 * 1024]

    with unchanged(server, v2, repo, image):
        response = v2.request(
            "PUT", f"/v2/{repo}/manifests/big", content=chunks(), headers={"Content-Type": OCI_MANIFEST}
        )
        assert_error(response, 413, "SIZE_INVALID")


def test_manifest_of_exactly_4_mib_is_accepted(v2: V2, repo: str, rng: random.Random) -> None:
    image = make_image(rng, layers=1, max_file_size=1024)
    v2.push_image(repo, image)
    doc = _manifest(image, annotations={"padding": ""})
    padding = 4 * MiB - len(canonical(doc))
    body = canonical(_manifest(image, annotations={"padding": "x" * padding}))
    assert len(body) == 4 * MiB
    v2.push_manifest(repo, "exact", body, OCI_MANIFEST)
    assert v2.manifest(repo, "exact").content == body


def test_manifest_referencing_a_missing_layer_is_manifest_blob_unknown(
    server: Server, v2: V2, pushed: tuple[str, Image]
) -> None:
    repo, image = pushed
    layers = [
        *json.loads(image.manifest.data)["layers"],
        {"mediaType": OCI_LAYER_GZIP, "digest": GOOD_DIGEST, "size": 19},
    ]
    body = canonical(_manifest(image, layers=layers))
    with unchanged(server, v2, repo, image):
        response = v2.request(
            "PUT", f"/v2/{repo}/manifests/v1", content=body, headers={"Content-Type": OCI_MANIFEST}
        )
        assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")
        assert response.json()["errors"][0]["detail"] == {"digest": GOOD_DIGEST}


def test_manifest_referencing_a_missing_config_is_manifest_blob_unknown(
    server: Server, v2: V2, pushed: tuple[str, Image], registry: str
) -> None:
    repo, image = pushed
    body = canonical(_manifest(image, config={"mediaType": OCI_CONFIG, "digest": GOOD_DIGEST, "size": 19}))
    for target in (repo, f"{registry}/never/created"):
        with unchanged(server, v2, repo, image):
            response = v2.request(
                "PUT", f"/v2/{target}/manifests/v1", content=body, headers={"Content-Type": OCI_MANIFEST}
            )
            assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


def test_blob_of_another_repository_does_not_satisfy_a_manifest(
    server: Server, v2: V2, pushed: tuple[str, Image], registry: str
) -> None:
    repo, image = pushed
    with unchanged(server, v2, repo, image):
        response = v2.request(
            "PUT",
            f"/v2/{registry}/elsewhere/app/manifests/v1",
            content=image.manifest.data,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert_error(response, 400, "MANIFEST_BLOB_UNKNOWN")


def test_index_referencing_a_missing_manifest_is_manifest_unknown(
    server: Server, v2: V2, pushed: tuple[str, Image], rng: random.Random
) -> None:
    repo, image = pushed
    absent = make_image(rng, layers=1, architecture="arm64", max_file_size=128)
    index = make_index([image, absent])
    with unchanged(server, v2, repo, image):
        response = v2.request(
            "PUT",
            f"/v2/{repo}/manifests/v1",
            content=index.manifest.data,
            headers={"Content-Type": OCI_INDEX},
        )
        assert_error(response, 404, "MANIFEST_UNKNOWN")
        assert response.json()["errors"][0]["detail"] == {"digest": absent.digest}


@pytest.mark.parametrize("tag", ["-leading-dash", ".leading-dot", "with!bang", "x" * 129, "with%20space"])
def test_manifest_put_with_an_invalid_tag_is_tag_invalid(
    server: Server, v2: V2, pushed: tuple[str, Image], tag: str
) -> None:
    repo, image = pushed
    with unchanged(server, v2, repo, image):
        response = v2.request(
            "PUT",
            f"/v2/{repo}/manifests/{tag}",
            content=image.manifest.data,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert_error(response, 400, "TAG_INVALID")


def test_manifest_put_with_an_invalid_tag_parameter_is_tag_invalid(
    server: Server, v2: V2, pushed: tuple[str, Image]
) -> None:
    repo, image = pushed
    with unchanged(server, v2, repo, image):
        response = v2.request(
            "PUT",
            f"/v2/{repo}/manifests/{image.digest}",
            params=[("tag", "good"), ("tag", "bad!")],
            content=image.manifest.data,
            headers={"Content-Type": OCI_MANIFEST},
        )
        assert_error(response, 400, "TAG_INVALID")
