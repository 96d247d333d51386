"""Encryption at rest through a live server: nothing readable on disk, tampering never served."""

from __future__ import annotations

import os
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.registry_client import RegistryClient, digest_of
from tests.support.server import Server

SEGMENT = 1024 * 1024
STEP = SEGMENT + 28
HEADER = 12


@pytest.fixture(scope="module")
def vault(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own (encryption on, the default), so every file under its data dir is ours."""
    with Server(data_dir=tmp_path_factory.mktemp("vault") / "data") as srv:
        srv.create_registry("tamper")
        srv.create_registry("tamper-other")
        yield srv


@pytest.fixture(scope="module")
def client(vault: Server) -> RegistryClient:
    return RegistryClient(vault.url, vault.auth)


def files_holding(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def sealed_path(server: Server, registry: str, digest: str) -> Path:
    with sqlite3.connect(f"file:{server.data_dir / 'cargobay.db'}?mode=ro", uri=True) as con:
        (key,) = con.execute(
            "SELECT b.object_key FROM blobs b JOIN registries r ON r.id = b.registry_id "
            "WHERE r.name = ? AND b.digest = ?",
            (registry, digest),
        ).fetchone()
    path = server.data_dir / "storage" / "objects" / f"{key}.cbe"
    assert path.is_file()
    return path


def assert_pull_fails(
    client: RegistryClient, repo: str, digest: str, expected: bytes, range_: tuple[int, int] | None = None
) -> None:
    """The pull ends in a 5xx or a broken transfer, and every byte received is the true content."""
    headers = {"Range": f"bytes={range_[0]}-{range_[1]}"} if range_ else {}
    wanted = expected[range_[0] : range_[1] + 1] if range_ else expected
    received = bytearray()
    try:
        for chunk in client.stream_blob(repo, digest, headers):
            received += chunk
            assert wanted.startswith(bytes(received)), "a wrong byte was served"
    except httpx.HTTPStatusError as exc:
        assert exc.response.status_code >= 500
        assert not received
    except (httpx.RemoteProtocolError, httpx.ReadError):
        pass  # the connection was cut mid-body
    else:
        pytest.fail(f"pull of a tampered blob succeeded with {len(received)} bytes")


# -- nothing readable on disk -------------------------------------------------------------------
def test_no_file_under_the_data_dir_holds_pushed_content(vault: Server, client: RegistryClient) -> None:
    vault.create_registry("marker")
    marker = f"CARGOBAY-MARKER-{uuid.uuid4().hex}".encode()
    layer = os.urandom(100) + marker * 100_000 + os.urandom(100)  # ~4.5 MiB over several segments
    digests = client.push_image(
        "marker/app", "v1", [layer, marker], {"org.example.note": marker.decode(), "secret": marker.decode()}
    )
    client.push_blob_chunked("marker/app", marker + os.urandom(3 * SEGMENT) + marker, 700_000)
    with client.client() as c:  # an upload left in progress: its staged bytes must be sealed too
        location = c.post("/v2/marker/app/blobs/uploads/").headers["location"]
        assert (
            c.patch(
                location, content=marker * 1000, headers={"Content-Range": f"0-{len(marker) * 1000 - 1}"}
            ).status_code
            == 202
        )

    assert client.get_blob("marker/app", digests["layer0"]).content == layer
    assert marker in client.get_manifest("marker/app", "v1").content
    assert files_holding(vault.data_dir, marker) == []
    assert list(vault.data_dir.glob("cargobay.db*")), "the database files were searched"
    assert list((vault.data_dir / "storage" / "staging").rglob("*.cbe")), "the upload was searched"


# -- tampering --------------------------------------------------------------------------------
@pytest.fixture
def pushed(client: RegistryClient) -> tuple[str, bytes, str]:
    """A fresh three-and-a-half-segment blob in its own repository."""
    repo = f"tamper/t{uuid.uuid4().hex[:8]}"
    data = os.urandom(3 * SEGMENT + SEGMENT // 2)
    return repo, data, client.push_blob(repo, data)


def test_an_untampered_blob_pulls_whole_and_in_ranges(
    client: RegistryClient, pushed: tuple[str, bytes, str]
) -> None:
    repo, data, digest = pushed
    assert client.get_blob(repo, digest).content == data
    r = client.get_blob(repo, digest, {"Range": f"bytes={SEGMENT - 10}-{2 * SEGMENT + 10}"})
    assert r.status_code == 206 and r.content == data[SEGMENT - 10 : 2 * SEGMENT + 11]


@pytest.mark.parametrize("where", [HEADER + 5, HEADER + STEP + 100, HEADER + 3 * STEP + 100, -1])
def test_a_flipped_byte_fails_the_pull(
    vault: Server, client: RegistryClient, pushed: tuple[str, bytes, str], where: int
) -> None:
    repo, data, digest = pushed
    path = sealed_path(vault, "tamper", digest)
    content = bytearray(path.read_bytes())
    content[where] ^= 0x01
    path.write_bytes(content)
    assert_pull_fails(client, repo, digest, data)
    segment = (where if where >= 0 else len(content) - 1 - HEADER) // STEP
    start = min(segment * SEGMENT + 10, len(data) - 20)
    assert_pull_fails(client, repo, digest, data, (start, start + 10))


def test_a_truncated_blob_fails_the_pull(
    vault: Server, client: RegistryClient, pushed: tuple[str, bytes, str]
) -> None:
    repo, data, digest = pushed
    path = sealed_path(vault, "tamper", digest)
    os.truncate(path, path.stat().st_size - 100)
    assert_pull_fails(client, repo, digest, data)
    assert_pull_fails(client, repo, digest, data, (len(data) - 10, len(data) - 1))


def test_an_extended_blob_fails_the_pull(
    vault: Server, client: RegistryClient, pushed: tuple[str, bytes, str]
) -> None:
    repo, data, digest = pushed
    path = sealed_path(vault, "tamper", digest)
    path.write_bytes(path.read_bytes() + b"\x00")
    assert_pull_fails(client, repo, digest, data)


def test_swapped_segments_fail_the_pull(
    vault: Server, client: RegistryClient, pushed: tuple[str, bytes, str]
) -> None:
    repo, data, digest = pushed
    path = sealed_path(vault, "tamper", digest)
    c = path.read_bytes()
    one, two = c[HEADER + STEP : HEADER + 2 * STEP], c[HEADER + 2 * STEP : HEADER + 3 * STEP]
    path.write_bytes(c[: HEADER + STEP] + two + one + c[HEADER + 3 * STEP :])
    assert_pull_fails(client, repo, digest, data)  # segment 0 is sent, then the transfer is cut
    assert_pull_fails(client, repo, digest, data, (SEGMENT + 5, SEGMENT + 50))
    events = [line for line in vault.log_tail(400).splitlines() if "stored_data_failed_verification" in line]
    assert any(digest in line and "registry=tamper" in line and "segment 1" in line for line in events)


def test_swapped_blob_files_fail_both_pulls(vault: Server, client: RegistryClient) -> None:
    repo = f"tamper/t{uuid.uuid4().hex[:8]}"
    first, second = os.urandom(SEGMENT + 999), os.urandom(SEGMENT + 999)
    one = sealed_path(vault, "tamper", client.push_blob(repo, first))
    two = sealed_path(vault, "tamper", client.push_blob(repo, second))
    a, b = one.read_bytes(), two.read_bytes()
    one.write_bytes(b)
    two.write_bytes(a)
    assert_pull_fails(client, repo, digest_of(first), first)
    assert_pull_fails(client, repo, digest_of(second), second)


def test_swapped_registry_files_fail_both_pulls(vault: Server, client: RegistryClient) -> None:
    tag = uuid.uuid4().hex[:8]
    first, second = os.urandom(5000), os.urandom(5000)
    one = sealed_path(vault, "tamper", client.push_blob(f"tamper/t{tag}", first))
    two = sealed_path(vault, "tamper-other", client.push_blob(f"tamper-other/t{tag}", second))
    a, b = one.read_bytes(), two.read_bytes()
    one.write_bytes(b)
    two.write_bytes(a)
    assert_pull_fails(client, f"tamper/t{tag}", digest_of(first), first)
    assert_pull_fails(client, f"tamper-other/t{tag}", digest_of(second), second)


def test_a_small_tampered_blob_is_a_clean_500_naming_registry_and_digest(
    vault: Server, client: RegistryClient
) -> None:
    repo = f"tamper/t{uuid.uuid4().hex[:8]}"
    data = os.urandom(2000)
    digest = client.push_blob(repo, data)
    path = sealed_path(vault, "tamper", digest)
    os.truncate(path, path.stat().st_size - 28)  # the final segment is gone
    r = client.get_blob(repo, digest)
    assert r.status_code == 500
    assert r.json()["errors"][0]["code"] == "UNKNOWN"
    assert data not in r.content
    log = vault.log_tail(200)
    event = [
        line for line in log.splitlines() if "stored_data_failed_verification" in line and digest in line
    ]
    assert event and "registry=tamper" in event[-1], log


def test_a_tampered_manifest_is_a_500(vault: Server, client: RegistryClient) -> None:
    repo = f"tamper/t{uuid.uuid4().hex[:8]}"
    digests = client.push_image(repo, "v1", [os.urandom(100)], {"a": "b"})
    with sqlite3.connect(vault.data_dir / "cargobay.db", timeout=30) as con:
        (body,) = con.execute(
            "SELECT body FROM manifests WHERE digest = ?", (digests["manifest"],)
        ).fetchone()
        tampered = bytearray(body)
        tampered[-5] ^= 0x01
        con.execute("UPDATE manifests SET body = ? WHERE digest = ?", (bytes(tampered), digests["manifest"]))
    assert client.get_manifest(repo, "v1").status_code == 500
    assert client.get_manifest(repo, digests["manifest"]).status_code == 500
    assert client.get_blob(repo, digests["layer0"]).status_code == 200
    assert any(
        "stored_data_failed_verification" in line and digests["manifest"] in line
        for line in vault.log_tail(200).splitlines()
    )


def test_a_plaintext_file_planted_for_a_sealed_blob_is_refused(vault: Server, client: RegistryClient) -> None:
    repo = f"tamper/t{uuid.uuid4().hex[:8]}"
    data = os.urandom(3000)
    digest = client.push_blob(repo, data)
    path = sealed_path(vault, "tamper", digest)
    path.unlink()
    path.with_name(path.name.removesuffix(".cbe")).write_bytes(b"forged" * 500)
    assert client.get_blob(repo, digest).status_code == 500


# -- switching encryption on and off ------------------------------------------------------------
def test_data_written_without_encryption_stays_readable_and_migrate_seals_it(tmp_path: Path) -> None:
    srv = Server(data_dir=tmp_path / "data", extra_env={"CARGOBAY_ENCRYPTION": "false"})
    marker = f"CARGOBAY-MARKER-{uuid.uuid4().hex}".encode()
    layer = marker * 50_000
    with srv:
        srv.create_registry("legacy")
        client = RegistryClient(srv.url, srv.auth)
        digests = client.push_image("legacy/app", "v1", [layer], {"note": marker.decode()})
    assert files_holding(srv.data_dir, marker), "with encryption off, content is stored as it is"

    srv.extra_env = {}
    with srv:
        assert client.get_blob("legacy/app", digests["layer0"]).content == layer
        assert marker in client.get_manifest("legacy/app", "v1").content
        new_digest = client.push_blob("legacy/app", marker + b"new")  # new data is sealed at once
        assert client.get_blob("legacy/app", new_digest).content == marker + b"new"

    out = srv.cli("migrate").stdout
    assert "2 blobs" in out and "1 manifests" in out, out
    assert files_holding(srv.data_dir, marker) == []

    with srv:
        assert client.get_blob("legacy/app", digests["layer0"]).content == layer
        assert marker in client.get_manifest("legacy/app", "v1").content
        path = sealed_path(srv, "legacy", digests["layer0"])
        path.unlink()
        path.with_name(path.name.removesuffix(".cbe")).write_bytes(layer)
        assert client.get_blob("legacy/app", digests["layer0"]).status_code == 500  # no more plaintext

    srv.extra_env = {"CARGOBAY_ENCRYPTION": "false"}
    refused = srv.cli("migrate", check=False)
    assert refused.returncode != 0 and "encrypted data" in refused.stderr
