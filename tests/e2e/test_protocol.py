"""Protocol behaviour the conformance suite leaves loose: ordering and paging, referrers filters,
content negotiation, exact bytes and headers, ranges, mounts, deletes and pull statistics."""

from __future__ import annotations

import json
import random
import re
import time
from typing import Any

import pytest

from tests.support.images import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Content,
    Image,
    canonical,
    make_image,
    make_index,
    sha256,
    sha512,
)
from tests.support.server import Server
from tests.support.v2 import V2, assert_error, database

LINK = re.compile(r'^<(?P<path>[^>]+)>; rel="next"$')


@pytest.fixture
def image(v2: V2, repo: str, rng: random.Random) -> Image:
    made = make_image(rng, layers=2, max_file_size=2048)
    v2.push_image(repo, made)
    return made


# -- tags --------------------------------------------------------------------------------------

TAGS = [
    "latest",
    "v1.10",
    "v1.9",
    "v1.0",
    "V2",
    "a",
    "a1",
    "a-1",
    "a_1",
    "a.1",
    "_hidden",
    "1",
    "10",
    "9",
    "Z",
]


def _pages(v2: V2, first: str) -> tuple[list[list[str]], list[str]]:
    """Follow ``Link`` headers from ``first``; returns the pages and the links followed."""
    pages: list[list[str]] = []
    links: list[str] = []
    path: str | None = first
    while path is not None:
        response = v2.get(path)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append(body.get("tags", body.get("repositories")))
        link = response.headers.get("link")
        if link is None:
            path = None
        else:
            match = LINK.match(link)
            assert match, link
            path = match["path"]
            links.append(path)
        assert len(pages) < 1000
    return pages, links


def test_tags_are_listed_in_lexical_order(v2: V2, repo: str, image: Image) -> None:
    for tag in TAGS:
        v2.push_manifest(repo, tag, image.manifest.data, image.manifest.media_type)
    response = v2.get(f"/v2/{repo}/tags/list")
    assert response.json() == {"name": repo, "tags": sorted(TAGS)}
    assert "link" not in response.headers


@pytest.mark.parametrize("n", [1, 2, 4, 14])
def test_tag_pages_follow_link_headers_to_the_end(v2: V2, repo: str, image: Image, n: int) -> None:
    for tag in TAGS:
        v2.push_manifest(repo, tag, image.manifest.data, image.manifest.media_type)
    pages, links = _pages(v2, f"/v2/{repo}/tags/list?n={n}")
    assert [tag for page in pages for tag in page] == sorted(TAGS)
    assert all(len(page) == n for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= n
    for link, previous in zip(links, pages, strict=False):
        assert link == f"/v2/{repo}/tags/list?n={n}&last={previous[-1]}"


def test_tag_list_last_is_exclusive_and_need_not_exist(v2: V2, repo: str, image: Image) -> None:
    for tag in TAGS:
        v2.push_manifest(repo, tag, image.manifest.data, image.manifest.media_type)
    ordered = sorted(TAGS)
    assert v2.get(f"/v2/{repo}/tags/list", params={"last": "a1"}).json()["tags"] == [
        t for t in ordered if t > "a1"
    ]
    assert v2.get(f"/v2/{repo}/tags/list", params={"last": "b"}).json()["tags"] == [
        t for t in ordered if t > "b"
    ]
    assert v2.get(f"/v2/{repo}/tags/list", params={"last": "zzz"}).json()["tags"] == []
    response = v2.get(f"/v2/{repo}/tags/list", params={"n": "2", "last": "V2"})
    assert response.json()["tags"] == [t for t in ordered if t > "V2"][:2]
    assert "link" in response.headers


def test_page_size_zero_and_exact_fit(v2: V2, repo: str, image: Image) -> None:
    for tag in ("a", "b", "c"):
        v2.push_manifest(repo, tag, image.manifest.data, image.manifest.media_type)
    zero = v2.get(f"/v2/{repo}/tags/list", params={"n": "0"})
    assert zero.json() == {"name": repo, "tags": []}
    exact = v2.get(f"/v2/{repo}/tags/list", params={"n": "3"})
    assert exact.json()["tags"] == ["a", "b", "c"]
    assert "link" not in exact.headers


def test_tag_list_of_an_unknown_repository_is_name_unknown(v2: V2, registry: str) -> None:
    assert_error(v2.get(f"/v2/{registry}/no/such/repo/tags/list"), 404, "NAME_UNKNOWN")


# -- referrers -----------------------------------------------------------------------------------


def _artifact(v2: V2, repo: str, subject: Content, artifact_type: str | None, note: str) -> Content:
    """An artifact manifest pointing at ``subject``; ``artifact_type`` None uses a config type."""
    blob = Content("text/plain", note.encode())
    v2.push_blob(repo, blob.data)
    if artifact_type is None:
        config = Content("application/vnd.example.config.v1+json", canonical({"note": note}))
        v2.push_blob(repo, config.data)
    else:
        config = Content(OCI_EMPTY, b"{}")
        v2.push_blob(repo, config.data)
    doc: dict[str, Any] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [blob.descriptor()],
        "subject": subject.descriptor(),
        "annotations": {"note": note},
    }
    if artifact_type is not None:
        doc["artifactType"] = artifact_type
    manifest = Content(OCI_MANIFEST, canonical(doc))
    response = v2.push_manifest(repo, manifest.digest, manifest.data, OCI_MANIFEST)
    assert response.headers["oci-subject"] == subject.digest
    return manifest


def test_referrers_lists_every_referrer_with_its_artifact_type(v2: V2, repo: str, image: Image) -> None:
    sbom = _artifact(v2, repo, image.manifest, "application/vnd.example.sbom", "sbom")
    signature = _artifact(v2, repo, image.manifest, "application/vnd.example.sig", "sig")
    legacy = _artifact(v2, repo, image.manifest, None, "config-typed")
    response = v2.get(f"/v2/{repo}/referrers/{image.digest}")
    assert response.status_code == 200
    assert response.headers["content-type"] == OCI_INDEX
    assert "oci-filters-applied" not in response.headers
    body = response.json()
    assert body["schemaVersion"] == 2
    assert body["mediaType"] == OCI_INDEX
    by_digest = {d["digest"]: d for d in body["manifests"]}
    assert set(by_digest) == {sbom.digest, signature.digest, legacy.digest}
    assert by_digest[sbom.digest] == {
        "mediaType": OCI_MANIFEST,
        "digest": sbom.digest,
        "size": sbom.size,
        "artifactType": "application/vnd.example.sbom",
        "annotations": {"note": "sbom"},
    }
    assert by_digest[legacy.digest]["artifactType"] == "application/vnd.example.config.v1+json"


def test_referrers_artifact_type_filter_is_applied_and_announced(v2: V2, repo: str, image: Image) -> None:
    _artifact(v2, repo, image.manifest, "application/vnd.example.sbom", "sbom")
    signature = _artifact(v2, repo, image.manifest, "application/vnd.example.sig", "sig")
    response = v2.get(
        f"/v2/{repo}/referrers/{image.digest}", params={"artifactType": "application/vnd.example.sig"}
    )
    assert response.headers["oci-filters-applied"] == "artifactType"
    assert [d["digest"] for d in response.json()["manifests"]] == [signature.digest]
    none = v2.get(
        f"/v2/{repo}/referrers/{image.digest}", params={"artifactType": "application/vnd.example.none"}
    )
    assert none.headers["oci-filters-applied"] == "artifactType"
    assert none.json()["manifests"] == []


def test_referrers_of_an_unknown_subject_is_an_empty_index(v2: V2, repo: str, image: Image) -> None:
    response = v2.get(f"/v2/{repo}/referrers/{sha256(b'no such subject')}")
    assert response.status_code == 200
    assert response.headers["content-type"] == OCI_INDEX
    assert response.json() == {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}


def test_subject_may_be_pushed_after_its_referrer(v2: V2, repo: str, rng: random.Random) -> None:
    subject = make_image(rng, layers=1, max_file_size=256)
    referrer = _artifact(v2, repo, subject.manifest, "application/vnd.example.early", "early")
    assert v2.manifest(repo, subject.digest).status_code == 404
    listed = v2.get(f"/v2/{repo}/referrers/{subject.digest}").json()["manifests"]
    assert [d["digest"] for d in listed] == [referrer.digest]
    v2.push_image(repo, subject, "later")
    listed = v2.get(f"/v2/{repo}/referrers/{subject.digest}").json()["manifests"]
    assert [d["digest"] for d in listed] == [referrer.digest]


def test_referrers_are_scoped_to_the_repository(v2: V2, repo: str, image: Image) -> None:
    _artifact(v2, repo, image.manifest, "application/vnd.example.sig", "sig")
    other = repo.replace("/app", "/other")
    v2.push_image(other, image)
    assert v2.get(f"/v2/{other}/referrers/{image.digest}").json()["manifests"] == []


# -- content negotiation ------------------------------------------------------------------------


@pytest.fixture
def multi(v2: V2, repo: str, rng: random.Random) -> tuple[Image, Image, Content]:
    arm = make_image(rng, layers=1, architecture="arm64", max_file_size=512)
    amd = make_image(rng, layers=1, architecture="amd64", max_file_size=512)
    index = make_index([arm, amd])  # amd64 deliberately not first
    v2.push_index(repo, index, "multi")
    return amd, arm, index.manifest


def test_index_tag_without_index_types_in_accept_resolves_to_linux_amd64(
    v2: V2, repo: str, multi: tuple[Image, Image, Content]
) -> None:
    amd, _, _ = multi
    response = v2.manifest(repo, "multi", accept=f"{OCI_MANIFEST}, {DOCKER_MANIFEST}")
    assert response.status_code == 200
    assert response.content == amd.manifest.data
    assert response.headers["docker-content-digest"] == amd.digest
    assert response.headers["content-type"] == OCI_MANIFEST


@pytest.mark.parametrize("accept", [None, "*/*", OCI_INDEX, f"{OCI_MANIFEST};q=0.5, {OCI_INDEX}"])
def test_index_is_served_when_accepted(
    v2: V2, repo: str, multi: tuple[Image, Image, Content], accept: str | None
) -> None:
    _, _, index = multi
    response = v2.manifest(repo, "multi", accept=accept)
    assert response.content == index.data
    assert response.headers["content-type"] == OCI_INDEX
    assert response.headers["docker-content-digest"] == index.digest


def test_index_by_digest_is_served_as_is(v2: V2, repo: str, multi: tuple[Image, Image, Content]) -> None:
    _, _, index = multi
    response = v2.manifest(repo, index.digest, accept=OCI_MANIFEST)
    assert response.status_code == 200
    assert response.content == index.data


def test_oci_manifest_asked_with_only_docker_types_is_manifest_unknown(
    v2: V2, repo: str, image: Image
) -> None:
    v2.push_manifest(repo, "oci", image.manifest.data, OCI_MANIFEST)
    response = v2.manifest(repo, "oci", accept=f"{DOCKER_MANIFEST}, {DOCKER_MANIFEST_LIST}")
    assert_error(response, 404, "MANIFEST_UNKNOWN")
    head = v2.head(f"/v2/{repo}/manifests/oci", headers={"Accept": DOCKER_MANIFEST})
    assert head.status_code == 404
    assert head.content == b""


def test_docker_manifest_is_served_with_its_own_type(v2: V2, repo: str, rng: random.Random) -> None:
    docker = make_image(rng, layers=1, docker=True, max_file_size=256)
    v2.push_image(repo, docker, "docker")
    response = v2.manifest(repo, "docker", accept=DOCKER_MANIFEST)
    assert response.headers["content-type"] == DOCKER_MANIFEST
    assert response.content == docker.manifest.data


# -- exact bytes and headers ---------------------------------------------------------------------


def test_manifest_is_returned_byte_for_byte(v2: V2, repo: str, image: Image) -> None:
    doc = json.loads(image.manifest.data)
    doc["annotations"] = {"text": "caf\u00e9 \u2603"}
    body = ("\n" + json.dumps(doc, indent=3) + "\r\n\t ").encode().replace(b'": 2,', b'":   2 ,', 1)
    response = v2.push_manifest(repo, "odd", body, OCI_MANIFEST)
    assert response.headers["docker-content-digest"] == sha256(body)
    assert response.headers["location"] == f"/v2/{repo}/manifests/{sha256(body)}"
    for reference in ("odd", sha256(body)):
        got = v2.manifest(repo, reference)
        assert got.content == body
        assert got.headers["docker-content-digest"] == sha256(body)
        assert got.headers["content-type"] == OCI_MANIFEST
        assert got.headers["content-length"] == str(len(body))


def test_manifest_pushed_by_sha512_is_addressed_and_echoed_in_sha512(v2: V2, repo: str, image: Image) -> None:
    digest = sha512(image.manifest.data)
    response = v2.push_manifest(repo, digest, image.manifest.data, OCI_MANIFEST)
    assert response.headers["docker-content-digest"] == digest
    got = v2.manifest(repo, digest)
    assert got.content == image.manifest.data
    assert got.headers["docker-content-digest"] == digest


@pytest.mark.parametrize("reference", ["tagged", "digest"])
def test_manifest_head_has_the_get_headers_and_no_body(
    v2: V2, repo: str, image: Image, reference: str
) -> None:
    v2.push_manifest(repo, "tagged", image.manifest.data, OCI_MANIFEST)
    ref = image.digest if reference == "digest" else "tagged"
    get = v2.manifest(repo, ref)
    head = v2.head(f"/v2/{repo}/manifests/{ref}")
    assert head.status_code == get.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "docker-content-digest", "etag"):
        assert head.headers[name] == get.headers[name], name


def test_blob_head_has_the_get_headers_and_no_body(v2: V2, repo: str, rng: random.Random) -> None:
    data = rng.randbytes(70_000)
    digest = v2.push_blob(repo, data)
    get = v2.blob(repo, digest)
    head = v2.head(f"/v2/{repo}/blobs/{digest}")
    assert get.content == data
    assert head.content == b""
    for name in ("content-type", "content-length", "docker-content-digest", "etag"):
        assert head.headers[name] == get.headers[name], name
    assert get.headers["content-length"] == str(len(data))
    assert get.headers["docker-content-digest"] == digest


def test_sha512_blob_is_echoed_in_sha512(v2: V2, repo: str, rng: random.Random) -> None:
    data = rng.randbytes(3000)
    digest = v2.push_blob(repo, data, sha512(data))
    response = v2.blob(repo, digest)
    assert response.content == data
    assert response.headers["docker-content-digest"] == digest
    assert v2.head(f"/v2/{repo}/blobs/{sha256(data)}").status_code == 404


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=100-", 100, 4999),
        ("bytes=-50", 4950, 4999),
        ("bytes=4990-99999", 4990, 4999),
    ],
)
def test_range_get_is_206_with_content_range(
    v2: V2, repo: str, rng: random.Random, value: str, start: int, end: int
) -> None:
    data = rng.randbytes(5000)
    digest = v2.push_blob(repo, data)
    response = v2.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": value})
    assert response.status_code == 206
    assert response.headers["content-range"] == f"bytes {start}-{end}/5000"
    assert response.headers["content-length"] == str(end - start + 1)
    assert response.content == data[start : end + 1]


def test_large_blob_range_in_the_middle(v2: V2, repo: str, rng: random.Random) -> None:
    data = rng.randbytes(3 * 1024 * 1024 + 17)
    digest = v2.push_blob(repo, data)
    start, end = 1024 * 1024 - 3, 2 * 1024 * 1024 + 5
    response = v2.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": f"bytes={start}-{end}"})
    assert response.status_code == 206
    assert response.content == data[start : end + 1]


# -- mounts --------------------------------------------------------------------------------------


def test_blob_mount_from_another_repository_is_201(
    v2: V2, repo: str, registry: str, rng: random.Random
) -> None:
    data = rng.randbytes(4000)
    source = f"{registry}/mount-source/{rng.getrandbits(32):x}"
    digest = v2.push_blob(source, data)
    assert v2.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
    response = v2.request("POST", f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source})
    assert response.status_code == 201
    assert response.headers["location"] == f"/v2/{repo}/blobs/{digest}"
    assert response.headers["docker-content-digest"] == digest
    assert v2.blob(repo, digest).content == data


@pytest.mark.parametrize(
    "source", ["protocol/no/such/repo", "other-registry/app", "protocol/UPPER", "nonsense"]
)
def test_mount_that_cannot_be_done_opens_a_session(
    v2: V2, repo: str, rng: random.Random, source: str
) -> None:
    data = rng.randbytes(100)
    digest = v2.push_blob(f"protocol/mount-holder/{rng.getrandbits(32):x}", data)
    response = v2.request("POST", f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source})
    assert response.status_code == 202
    location = response.headers["location"]
    assert v2.head(f"/v2/{repo}/blobs/{digest}").status_code == 404
    done = v2.request("PUT", location, params={"digest": digest}, content=data)
    assert done.status_code == 201


def test_mount_from_a_repository_without_the_blob_opens_a_session(
    v2: V2, repo: str, registry: str, rng: random.Random
) -> None:
    source = f"{registry}/mount-empty/{rng.getrandbits(32):x}"
    v2.push_blob(source, b"something else")
    digest = v2.push_blob(f"{registry}/mount-holder/{rng.getrandbits(32):x}", b"the blob")
    response = v2.request("POST", f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": source})
    assert response.status_code == 202


# -- deletes ------------------------------------------------------------------------------------


def test_delete_by_tag_removes_only_the_tag(v2: V2, repo: str, image: Image) -> None:
    for tag in ("a", "b"):
        v2.push_manifest(repo, tag, image.manifest.data, OCI_MANIFEST)
    assert v2.request("DELETE", f"/v2/{repo}/manifests/a").status_code == 202
    assert v2.tags(repo) == ["b"]
    assert v2.manifest(repo, image.digest).content == image.manifest.data
    assert v2.manifest(repo, "b").status_code == 200
    assert_error(v2.manifest(repo, "a"), 404, "MANIFEST_UNKNOWN")
    assert_error(v2.request("DELETE", f"/v2/{repo}/manifests/a"), 404, "MANIFEST_UNKNOWN")


def test_delete_by_digest_removes_the_manifest_and_its_tags(
    v2: V2, repo: str, image: Image, rng: random.Random
) -> None:
    other = make_image(rng, layers=1, max_file_size=128)
    v2.push_image(repo, other, "other")
    for tag in ("a", "b"):
        v2.push_manifest(repo, tag, image.manifest.data, OCI_MANIFEST)
    assert v2.request("DELETE", f"/v2/{repo}/manifests/{image.digest}").status_code == 202
    assert v2.tags(repo) == ["other"]
    for reference in ("a", "b", image.digest):
        assert_error(v2.manifest(repo, reference), 404, "MANIFEST_UNKNOWN")
    assert v2.manifest(repo, "other").status_code == 200
    for blob in image.blobs:  # blobs stay until garbage collection
        assert v2.head(f"/v2/{repo}/blobs/{blob.digest}").status_code == 200


def test_deleted_blob_is_gone_from_the_repository_only(
    v2: V2, repo: str, registry: str, rng: random.Random
) -> None:
    data = rng.randbytes(500)
    other = f"{registry}/delete-other/{rng.getrandbits(32):x}"
    digest = v2.push_blob(repo, data)
    v2.push_blob(other, data)
    assert v2.request("DELETE", f"/v2/{repo}/blobs/{digest}").status_code == 202
    assert_error(v2.blob(repo, digest), 404, "BLOB_UNKNOWN")
    assert v2.blob(other, digest).content == data


# -- statistics ---------------------------------------------------------------------------------


def _stats(server: Server, registry: str, repo: str, digest: str) -> dict[str, Any]:
    inner = repo.split("/", 1)[1]
    with database(server) as db:
        row = db.execute(
            "SELECT m.pushed_at, m.push_count, m.pulled_at, m.pull_count, r.push_count, r.pull_count,"
            " r.last_pushed_at, r.last_pulled_at FROM manifests m"
            " JOIN repositories r ON r.id = m.repository_id JOIN registries g ON g.id = r.registry_id"
            " WHERE g.name = ? AND r.name = ? AND m.digest = ?",
            (registry, inner, digest),
        ).fetchone()
    keys = (
        "pushed_at",
        "push_count",
        "pulled_at",
        "pull_count",
        "repo_pushes",
        "repo_pulls",
        "repo_pushed_at",
    )
    return dict(zip((*keys, "repo_pulled_at"), row, strict=True))


def test_push_and_pull_statistics_are_recorded(
    server: Server, v2: V2, repo: str, registry: str, image: Image
) -> None:
    stats = _stats(server, registry, repo, image.digest)
    assert stats["pushed_at"] is not None
    assert stats["push_count"] == 1
    assert stats["pulled_at"] is None
    assert stats["pull_count"] == 0
    v2.push_manifest(repo, "again", image.manifest.data, OCI_MANIFEST)
    assert _stats(server, registry, repo, image.digest)["push_count"] == 2
    for _ in range(3):
        assert v2.manifest(repo, image.digest).status_code == 200
    assert v2.head(f"/v2/{repo}/manifests/{image.digest}").status_code == 200  # a HEAD is no pull
    deadline = time.monotonic() + 3
    while _stats(server, registry, repo, image.digest)["pull_count"] < 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1.2)  # one more flush interval: nothing else may arrive
    stats = _stats(server, registry, repo, image.digest)
    assert stats["pull_count"] == 3
    assert stats["pulled_at"] is not None
    assert stats["repo_pulls"] == 3
    assert stats["repo_pulled_at"] is not None
    assert stats["repo_pushes"] == 2


# -- empty blobs -----------------------------------------------------------------------------


@pytest.mark.parametrize("digest_of", [sha256, sha512], ids=["sha256", "sha512"])
def test_empty_monolithic_upload_is_committed_in_any_algorithm(v2: V2, repo: str, digest_of: Any) -> None:
    digest = digest_of(b"")
    response = v2.request("POST", f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=b"")
    assert response.status_code == 201, response.text
    assert response.headers["docker-content-digest"] == digest
    head = v2.head(f"/v2/{repo}/blobs/{digest}")
    assert head.status_code == 200
    assert head.headers["content-length"] == "0"


def test_post_with_a_digest_but_no_body_opens_a_session(v2: V2, repo: str) -> None:
    digest = sha256(b"to come")
    response = v2.request("POST", f"/v2/{repo}/blobs/uploads/", params={"digest": digest})
    assert response.status_code == 202
    done = v2.request("PUT", response.headers["location"], params={"digest": digest}, content=b"to come")
    assert done.status_code == 201
