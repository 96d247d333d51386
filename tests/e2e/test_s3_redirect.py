"""Blob GETs redirected to presigned URLs of the bucket (``redirect=true`` in an S3 storage URL, with
encryption at rest off), against versitygw: a 307 whose Location anyone holding it reads the exact
blob from, crane pulling through the redirects, no redirect without the right to pull, and the
settings it cannot work with refused at start."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from cargobay.storage.s3 import MIN_PART
from tests.support.clients import ClientEnv
from tests.support.conformance import run_conformance
from tests.support.images import layout_blobs, sha256, tar_layer
from tests.support.s3 import S3Server
from tests.support.server import Server
from tests.support.v2 import V2

pytestmark = pytest.mark.slow

BLOB_ROUTE = "/v2/{name}/blobs/{digest}"


@pytest.fixture(scope="module")
def bucket(s3_server: S3Server) -> str:
    return s3_server.new_bucket("redirect")


def redirecting(
    s3_server: S3Server, bucket: str, data_dir: Path, encryption: bool = False, **params: str
) -> Server:
    """A server on the bucket (prefix ``registry``) with ``redirect=true`` and ``params``."""
    storage = s3_server.url(bucket, "registry", **{"part_size": str(MIN_PART), "redirect": "true", **params})
    return Server(
        data_dir=data_dir,
        extra_env={
            "CARGOBAY_STORAGE_URL": storage,
            "CARGOBAY_ENCRYPTION": str(encryption).lower(),
            **s3_server.env,
        },
    )


@pytest.fixture(scope="module")
def server(s3_server: S3Server, bucket: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with redirecting(s3_server, bucket, tmp_path_factory.mktemp("redirect") / "data") as started:
        yield started


@pytest.fixture(scope="module")
def registry_id(server: Server) -> str:
    return server.create_registry("objects")


def metric(server: Server, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for family in text_string_to_metric_families(httpx.get(f"{server.url}/metrics").text):
        for sample in family.samples:
            if sample.name == name and labels.items() <= sample.labels.items():
                total += sample.value
    return total


def test_a_blob_get_is_a_307_to_the_bucket_whose_url_reads_the_exact_blob_without_our_credentials(
    server: Server, s3_server: S3Server, bucket: str, registry_id: str
) -> None:
    layer = random.Random(3).randbytes(MIN_PART + 123_457)  # stored in two multipart parts
    with V2(server) as client:
        digest = client.push_blob("objects/app", layer)
        redirected_before = metric(server, "cargobay_blob_redirected_bytes_total")
        sent_before = metric(server, "cargobay_http_sent_bytes_total", route=BLOB_ROUTE)

        answer = client.get(f"/v2/objects/app/blobs/{digest}")
        assert answer.status_code == 307, answer.text
        assert answer.headers["docker-content-digest"] == digest and answer.content == b""
        location = answer.headers["location"]
        assert location.startswith(f"{s3_server.endpoint_url}/{bucket}/registry/{registry_id}/blobs/")
        assert "X-Amz-Signature=" in location and "X-Amz-Expires=1200" in location

        ranged = client.get(f"/v2/objects/app/blobs/{digest}", headers={"Range": "bytes=1000-1999"})
        assert ranged.status_code == 307
        head = client.head(f"/v2/objects/app/blobs/{digest}")  # HEAD is answered here, as always
        assert head.status_code == 200 and "location" not in head.headers
        assert head.headers["docker-content-digest"] == digest
        assert head.headers["content-length"] == str(len(layer))

    with httpx.Client(timeout=60) as anyone:  # no credentials: the URL is the only key
        fetched = anyone.get(location)
        assert fetched.status_code == 200 and sha256(fetched.content) == digest
        part = anyone.get(ranged.headers["location"], headers={"Range": "bytes=1000-1999"})
        assert part.status_code == 206 and part.content == layer[1000:2000]

    assert metric(server, "cargobay_blob_redirected_bytes_total") - redirected_before == len(layer) + 1000
    assert metric(server, "cargobay_http_sent_bytes_total", route=BLOB_ROUTE) == sent_before
    assert metric(server, "cargobay_http_requests_total", route=BLOB_ROUTE, method="GET", status="307") >= 2


def test_crane_pulls_and_validates_an_image_through_the_redirects(
    server: Server, registry_id: str, clients: ClientEnv, tmp_path: Path
) -> None:
    rng = random.Random(5)
    clients.run("crane", "auth", "login", server.host, "-u", server.admin_user, "-p", server.admin_password)
    ref = f"{server.host}/objects/crane:v1"
    small, large = tmp_path / "small.tar.gz", tmp_path / "large.tar.gz"
    small.write_bytes(tar_layer(rng, [1000, 30_000]))
    large.write_bytes(tar_layer(rng, [7 * 1024 * 1024]))
    clients.run("crane", "--insecure", "append", "-f", str(small), "-t", ref)
    clients.run("crane", "--insecure", "append", "-b", ref, "-f", str(large), "-t", ref)
    redirected_before = metric(server, "cargobay_blob_redirected_bytes_total")
    sent_before = metric(server, "cargobay_http_sent_bytes_total", route=BLOB_ROUTE)

    layout = tmp_path / "layout"
    clients.run("crane", "--insecure", "pull", "--format", "oci", ref, str(layout))
    clients.run("crane", "--insecure", "validate", "--remote", ref)  # every layer and the config verify
    blobs = layout_blobs(layout)  # each checked against its digest
    assert blobs[sha256(large.read_bytes())] == large.read_bytes()
    assert blobs[sha256(small.read_bytes())] == small.read_bytes()

    # The layers came from the bucket, not through the registry.
    assert (
        metric(server, "cargobay_blob_redirected_bytes_total") - redirected_before >= 2 * large.stat().st_size
    )
    assert metric(server, "cargobay_http_sent_bytes_total", route=BLOB_ROUTE) == sent_before


def test_no_redirect_without_the_right_to_pull(server: Server, registry_id: str) -> None:
    with V2(server) as client:
        digest = client.push_blob("objects/private/app", b"not for everyone")
    created = server.cli("token", "create", "objects", "elsewhere", "--scope", "repository:public/*:pull")
    password = created.stdout.split("password (shown once): ", 1)[1].split()[0]
    path = f"{server.url}/v2/objects/private/app/blobs/{digest}"

    anonymous = httpx.get(path)
    assert anonymous.status_code == 401 and "location" not in anonymous.headers
    assert anonymous.headers["www-authenticate"].startswith("Bearer ")
    wrong = httpx.get(path, auth=(server.admin_user, "not-the-password"))
    assert wrong.status_code == 401 and "location" not in wrong.headers
    other_scope = httpx.get(path, auth=("elsewhere", password))
    assert other_scope.status_code in (401, 403) and "location" not in other_scope.headers
    unknown = httpx.get(
        f"{server.url}/v2/objects/private/app/blobs/{sha256(b'never pushed')}", auth=server.auth
    )
    assert unknown.status_code == 404 and "location" not in unknown.headers
    assert httpx.get(path, auth=server.auth).status_code == 307  # the owner may


def test_redirect_with_encryption_on_stops_the_server_at_start(s3_server: S3Server, tmp_path: Path) -> None:
    server = redirecting(s3_server, s3_server.new_bucket("sealed"), tmp_path / "data", encryption=True)
    server.data_dir.mkdir(parents=True)
    try:
        with pytest.raises(RuntimeError, match="exited with 1"):
            server.start()
    finally:
        server.stop()
    log = server.log_tail()
    assert "error: CARGOBAY_STORAGE_URL: redirect=true needs CARGOBAY_ENCRYPTION=false" in log
    assert "Traceback" not in log


def test_a_bad_redirect_setting_stops_serve_and_worker_with_what_is_wrong(
    s3_server: S3Server, tmp_path: Path
) -> None:
    """One bad value through the CLI (tests/storage/test_s3.py has the others, at the parser)."""
    server = redirecting(s3_server, s3_server.new_bucket("bad"), tmp_path / "data", redirect="maybe")
    for command in ("serve", "worker"):
        result = server.cli(command, check=False)
        assert result.returncode == 1, result.stderr
        assert "error: CARGOBAY_STORAGE_URL: redirect must be true or false, not 'maybe'" in result.stderr
        assert "Traceback" not in result.stderr


def test_the_conformance_suite_passes_with_blob_gets_redirected(
    server: Server, registry_id: str, tmp_path: Path
) -> None:
    redirected_before = metric(server, "cargobay_blob_redirected_bytes_total")
    run_conformance(server, "objects/conformance", "1.1", tmp_path)
    assert metric(server, "cargobay_blob_redirected_bytes_total") > redirected_before
