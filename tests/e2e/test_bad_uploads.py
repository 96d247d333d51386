"""Blob uploads and reads that must fail precisely: wrong or malformed digests, lying ranges,
unknown sessions. A failed chunk leaves its session usable at the previous offset; a failed
upload commits nothing."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.support.images import sha256, sha512
from tests.support.server import Server
from tests.support.v2 import V2, assert_error, basic_header, raw_request, snapshot

# -- helpers ------------------------------------------------------------------------------------


def upload_offset(v2: V2, location: str) -> int:
    """The offset a session reports (GET status); ``0-0`` is read as empty (tests avoid 1 byte)."""
    response = v2.get(location)
    assert response.status_code == 204, response.text
    start, end = (int(x) for x in response.headers["range"].split("-"))
    assert start == 0
    return 0 if end == 0 else end + 1


def patch(v2: V2, location: str, data: bytes, start: int | None = None, **headers: str) -> httpx.Response:
    if start is not None:
        headers = {"Content-Range": f"{start}-{start + len(data) - 1}", **headers}
    return v2.request(
        "PATCH", location, content=data, headers={"Content-Type": "application/octet-stream", **headers}
    )


def finish(v2: V2, location: str, digest: str, data: bytes = b"") -> httpx.Response:
    return v2.request("PUT", location, params={"digest": digest}, content=data)


def assert_finishes(v2: V2, repo: str, location: str, data: bytes, rest: bytes = b"") -> None:
    """The session accepts ``rest`` as its last chunk and commits exactly ``data + rest``."""
    whole = data + rest
    response = finish(v2, location, sha256(whole), rest)
    assert response.status_code == 201, response.text
    blob = v2.blob(repo, sha256(whole))
    assert blob.status_code == 200
    assert blob.content == whole


@pytest.fixture
def session(v2: V2, repo: str, rng: random.Random) -> tuple[str, bytes]:
    """An open upload session that already holds one chunk: (Location, bytes so far)."""
    location = v2.start_upload(repo)
    first = rng.randbytes(1000)
    response = patch(v2, location, first, start=0)
    assert response.status_code == 202, response.text
    assert response.headers["range"] == "0-999"
    return location, first


def chunks_of(data: bytes, size: int = 100) -> Iterator[bytes]:
    for offset in range(0, len(data), size):
        yield data[offset : offset + size]


# -- wrong digests ------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["sha256", "sha512"])
def test_monolithic_upload_with_wrong_digest_commits_nothing(
    server: Server, v2: V2, repo: str, rng: random.Random, algorithm: str
) -> None:
    data = rng.randbytes(5000)
    claimed = (sha256 if algorithm == "sha256" else sha512)(data + b"!")
    before = snapshot(server)
    response = v2.request("POST", f"/v2/{repo}/blobs/uploads/", params={"digest": claimed}, content=data)
    assert_error(response, 400, "DIGEST_INVALID")
    assert snapshot(server) == before
    for digest in (claimed, sha256(data), sha512(data)):
        assert v2.head(f"/v2/{repo}/blobs/{digest}").status_code == 404


def test_session_finished_with_wrong_digest_commits_nothing(
    server: Server, v2: V2, repo: str, session: tuple[str, bytes]
) -> None:
    location, data = session
    before = snapshot(server)
    response = finish(v2, location, sha256(data + b"x"), b"x" * 10)
    assert_error(response, 400, "DIGEST_INVALID")
    assert snapshot(server) == before
    for digest in (sha256(data + b"x"), sha256(data + b"x" * 10), sha256(data)):
        assert v2.head(f"/v2/{repo}/blobs/{digest}").status_code == 404


def test_streamed_upload_with_wrong_digest_commits_nothing(
    server: Server, v2: V2, repo: str, rng: random.Random
) -> None:
    data = rng.randbytes(300_000)
    location = v2.start_upload(repo)
    response = v2.request("PATCH", location, content=chunks_of(data, 4096))
    assert response.status_code == 202
    before = snapshot(server)
    assert_error(finish(v2, location, sha512(data[:-1])), 400, "DIGEST_INVALID")
    assert snapshot(server) == before
    assert v2.head(f"/v2/{repo}/blobs/{sha512(data)}").status_code == 404
    assert v2.head(f"/v2/{repo}/blobs/{sha256(data)}").status_code == 404


# -- malformed digests, in every place a digest goes ---------------------------------------------

BAD_DIGESTS = [
    "sha256:xyz",
    "sha256:" + "a" * 63,
    "sha256:" + "a" * 65,
    "sha256:" + "A" * 64,
    "sha256:" + "g" * 64,
    "sha256:",
    ":" + "a" * 64,
    "SHA256:" + "a" * 64,
    "sha512:" + "a" * 64,
    "sha256+b64:" + "a" * 64,
    "md5:d41d8cd98f00b204e9800998ecf8427e",
    "sha384:" + "a" * 96,
    "sha256:" + "a" * 64 + ":x",
]


@pytest.mark.parametrize("digest", BAD_DIGESTS)
@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_malformed_digest_in_blob_path_is_400(v2: V2, repo: str, method: str, digest: str) -> None:
    response = v2.request(method, f"/v2/{repo}/blobs/{digest}")
    if method == "HEAD":
        assert response.status_code == 400
    else:
        assert_error(response, 400, "DIGEST_INVALID")


@pytest.mark.parametrize("digest", BAD_DIGESTS)
@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE", "PUT"])
def test_malformed_digest_in_manifest_path_is_400(v2: V2, repo: str, method: str, digest: str) -> None:
    response = v2.request(
        method, f"/v2/{repo}/manifests/{digest}", content=b"{}" if method == "PUT" else None
    )
    if method == "HEAD":
        assert response.status_code == 400
    else:
        assert_error(response, 400, "DIGEST_INVALID")


@pytest.mark.parametrize("digest", [*BAD_DIGESTS, "not-a-digest"])
def test_malformed_digest_in_referrers_path_is_400(v2: V2, repo: str, digest: str) -> None:
    assert_error(v2.get(f"/v2/{repo}/referrers/{digest}"), 400, "DIGEST_INVALID")


@pytest.mark.parametrize("digest", [*BAD_DIGESTS, "not-a-digest", ""])
def test_malformed_mount_digest_is_400(server: Server, v2: V2, repo: str, registry: str, digest: str) -> None:
    before = snapshot(server)
    response = v2.request(
        "POST", f"/v2/{repo}/blobs/uploads/", params={"mount": digest, "from": f"{registry}/other/app"}
    )
    assert_error(response, 400, "DIGEST_INVALID")
    assert snapshot(server) == before


@pytest.mark.parametrize("digest", [*BAD_DIGESTS, "not-a-digest"])
def test_malformed_digest_parameter_on_monolithic_upload_is_400(
    server: Server, v2: V2, repo: str, digest: str
) -> None:
    before = snapshot(server)
    response = v2.request("POST", f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=b"data")
    assert_error(response, 400, "DIGEST_INVALID")
    assert snapshot(server) == before


@pytest.mark.parametrize("digest", [*BAD_DIGESTS, "not-a-digest", ""])
def test_malformed_digest_parameter_on_finish_is_400_and_session_survives(
    server: Server, v2: V2, repo: str, session: tuple[str, bytes], digest: str
) -> None:
    location, data = session
    before = snapshot(server)
    assert_error(finish(v2, location, digest, b"tail"), 400, "DIGEST_INVALID")
    assert snapshot(server) == before
    assert upload_offset(v2, location) == len(data)
    assert_finishes(v2, repo, location, data, b"tail")


def test_finish_without_digest_parameter_is_400_and_session_survives(
    v2: V2, repo: str, session: tuple[str, bytes]
) -> None:
    location, data = session
    assert_error(v2.request("PUT", location), 400, "DIGEST_INVALID")
    assert upload_offset(v2, location) == len(data)
    assert_finishes(v2, repo, location, data)


# -- Content-Range and bodies that do not agree -----------------------------------------------


def test_content_range_longer_than_content_length_is_refused_and_session_survives(
    v2: V2, repo: str, session: tuple[str, bytes]
) -> None:
    location, data = session
    response = patch(v2, location, b"y" * 10, **{"Content-Range": "1000-1019"})
    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert response.headers["range"] == "0-999"
    assert upload_offset(v2, location) == 1000
    assert_finishes(v2, repo, location, data, b"y" * 10)


def test_content_range_shorter_than_content_length_is_refused_and_session_survives(
    v2: V2, repo: str, session: tuple[str, bytes]
) -> None:
    location, data = session
    response = patch(v2, location, b"y" * 10, **{"Content-Range": "1000-1004"})
    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert upload_offset(v2, location) == 1000
    assert_finishes(v2, repo, location, data, b"y" * 10)


def test_streamed_body_longer_than_content_range_is_refused_and_session_survives(
    v2: V2, repo: str, session: tuple[str, bytes], rng: random.Random
) -> None:
    location, data = session
    body = rng.randbytes(3_000_000)  # several MiB blocks: part of it reaches the disk before the check
    response = v2.request(
        "PATCH", location, content=chunks_of(body, 65536), headers={"Content-Range": "1000-1999"}
    )
    assert_error(response, 400, "BLOB_UPLOAD_INVALID")
    assert upload_offset(v2, location) == 1000
    assert_finishes(v2, repo, location, data, body[:1000])


def test_streamed_body_shorter_than_content_range_is_refused_and_session_survives(
    v2: V2, repo: str, session: tuple[str, bytes], rng: random.Random
) -> None:
    location, data = session
    body = rng.randbytes(2_500_000)
    response = v2.request(
        "PATCH", location, content=chunks_of(body, 65536), headers={"Content-Range": "1000-2999999"}
    )
    assert_error(response, 400, "BLOB_UPLOAD_INVALID")
    assert upload_offset(v2, location) == 1000
    assert_finishes(v2, repo, location, data, body)


@pytest.mark.parametrize("size", [10, 3_000_000])
def test_body_cut_short_of_content_length_leaves_session_at_previous_offset(
    server: Server, v2: V2, repo: str, session: tuple[str, bytes], rng: random.Random, size: int
) -> None:
    location, data = session
    sent = rng.randbytes(size)
    head = (
        f"PATCH {location} HTTP/1.1\r\nHost: {server.host}\r\n".encode()
        + basic_header(server)
        + f"Content-Range: 1000-{1000 + 2 * size - 1}\r\nContent-Length: {2 * size}\r\n\r\n".encode()
    )
    raw_request(server, head, sent, half_close=True)  # the client hangs up halfway through the body
    deadline = time.monotonic() + 5
    while upload_offset(v2, location) != 1000 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert upload_offset(v2, location) == 1000
    assert_finishes(v2, repo, location, data, sent)


@pytest.mark.parametrize("value", ["bytes=1000-1009", "1000-", "abc", "1009-1000", "-5", "1000-1009/5x"])
def test_malformed_content_range_is_416_and_session_survives(
    v2: V2, repo: str, session: tuple[str, bytes], value: str
) -> None:
    location, data = session
    response = patch(v2, location, b"z" * 10, **{"Content-Range": value})
    if value == "bytes=1000-1009":  # distribution's spelling, accepted
        assert response.status_code == 202
        assert_finishes(v2, repo, location, data + b"z" * 10)
        return
    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert upload_offset(v2, location) == 1000
    assert_finishes(v2, repo, location, data, b"z" * 10)


@pytest.mark.parametrize("start", [0, 999, 1001, 5000])
def test_out_of_order_chunk_is_416_with_current_range_and_session_survives(
    v2: V2, repo: str, session: tuple[str, bytes], start: int
) -> None:
    location, data = session
    response = patch(v2, location, b"q" * 10, start=start)
    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert response.headers["range"] == "0-999"
    assert upload_offset(v2, location) == 1000
    assert patch(v2, location, b"q" * 10, start=1000).status_code == 202
    assert upload_offset(v2, location) == 1010
    assert_finishes(v2, repo, location, data + b"q" * 10)


def test_chunk_at_offset_zero_of_a_fresh_session_is_accepted(v2: V2, repo: str) -> None:
    location = v2.start_upload(repo)
    assert_error(patch(v2, location, b"abc", start=1), 416, "BLOB_UPLOAD_INVALID")
    assert patch(v2, location, b"abc", start=0).status_code == 202
    assert_finishes(v2, repo, location, b"abc")


def test_finish_with_a_lying_final_chunk_is_refused_and_session_survives(
    server: Server, v2: V2, repo: str, session: tuple[str, bytes]
) -> None:
    location, data = session
    before = snapshot(server)
    response = v2.request(
        "PUT",
        location,
        params={"digest": sha256(data + b"t" * 10)},
        content=b"t" * 10,
        headers={"Content-Range": "1000-1019"},
    )
    assert_error(response, 416, "BLOB_UPLOAD_INVALID")
    assert snapshot(server) == before
    assert upload_offset(v2, location) == 1000
    assert_finishes(v2, repo, location, data, b"t" * 10)


# -- unknown sessions -------------------------------------------------------------------------


def _unknown_upload_paths(v2: V2, repo: str, registry: str) -> dict[str, str]:
    other = v2.start_upload(f"{registry}/other-owner/app")
    finished = v2.start_upload(repo)
    assert finish(v2, finished, sha256(b"done"), b"done").status_code == 201
    cancelled = v2.start_upload(repo)
    assert v2.request("DELETE", cancelled).status_code == 204
    base = f"/v2/{repo}/blobs/uploads"
    return {
        "random-uuid": f"{base}/{uuid.uuid4()}",
        "not-a-uuid": f"{base}/not-a-uuid",
        "uuid-without-dashes": f"{base}/{uuid.uuid4().hex}",
        "another-repositorys": f"{base}/{other.rsplit('/', 1)[1]}",
        "finished": finished,
        "cancelled": cancelled,
    }


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_unknown_upload_ids_are_blob_upload_unknown(
    server: Server, v2: V2, repo: str, registry: str, method: str
) -> None:
    paths = _unknown_upload_paths(v2, repo, registry)
    before = snapshot(server)
    for kind, path in paths.items():
        params = {"digest": sha256(b"x")} if method == "PUT" else {}
        response = v2.request(
            method, path, params=params, content=b"x" if method in ("PATCH", "PUT") else None
        )
        assert (response.status_code, response.json()["errors"][0]["code"]) == (404, "BLOB_UPLOAD_UNKNOWN"), (
            kind
        )
    assert snapshot(server) == before


def test_another_repositorys_session_stays_usable_after_a_foreign_attempt(
    v2: V2, repo: str, registry: str
) -> None:
    owner = f"{registry}/other-owner/app"
    location = v2.start_upload(owner)
    upload_id = location.rsplit("/", 1)[1]
    assert patch(v2, f"/v2/{repo}/blobs/uploads/{upload_id}", b"intruder", start=0).status_code == 404
    assert upload_offset(v2, location) == 0
    assert patch(v2, location, b"owner", start=0).status_code == 202
    assert_finishes(v2, owner, location, b"owner")


# -- unknown content, and ranges on blob reads ---------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_unknown_blob_is_blob_unknown(v2: V2, repo: str, method: str) -> None:
    v2.push_blob(repo, b"something else")
    response = v2.request(method, f"/v2/{repo}/blobs/{sha256(b'never pushed')}")
    if method == "HEAD":
        assert response.status_code == 404
        assert response.content == b""
    else:
        assert_error(response, 404, "BLOB_UNKNOWN")


@pytest.mark.parametrize("reference", ["no-such-tag", sha256(b"no such manifest"), "sha512:" + "0" * 128])
@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE"])
def test_unknown_manifest_is_manifest_unknown(v2: V2, repo: str, method: str, reference: str) -> None:
    v2.push_blob(repo, b"makes the repository exist")
    response = v2.request(method, f"/v2/{repo}/manifests/{reference}")
    if method == "HEAD":
        assert response.status_code == 404
    else:
        assert_error(response, 404, "MANIFEST_UNKNOWN")


@pytest.fixture
def stored_blob(v2: V2, repo: str, rng: random.Random) -> tuple[str, bytes]:
    data = rng.randbytes(1000)
    return v2.push_blob(repo, data), data


@pytest.mark.parametrize(
    "value",
    ["bytes=500-0", "bytes=1000-", "bytes=1000-2000", "bytes=5000-6000", "bytes=-0", "bytes=x-y", "bytes=-"],
)
def test_unsatisfiable_range_is_416_with_the_size(
    v2: V2, repo: str, stored_blob: tuple[str, bytes], value: str
) -> None:
    digest, _ = stored_blob
    response = v2.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": value})
    assert_error(response, 416, "RANGE_INVALID")
    assert response.headers["content-range"] == "bytes */1000"


@pytest.mark.parametrize("value", ["items=0-10", "bytes=0-1,5-6"])
def test_range_forms_not_served_partially_return_the_whole_blob(
    v2: V2, repo: str, stored_blob: tuple[str, bytes], value: str
) -> None:
    digest, data = stored_blob
    response = v2.get(f"/v2/{repo}/blobs/{digest}", headers={"Range": value})
    assert response.status_code == 200
    assert response.content == data
