"""``cargobay keys rotate-master``: data keys re-wrapped, blobs untouched, crash-safe and resumable."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from cargobay.faults import EXIT_CODE
from cargobay.storage.keys import MasterKeyFile, generate_key, key_id, write_key_file
from tests.support.registry_client import RegistryClient
from tests.support.server import Server

REGISTRIES = ("rot-a", "rot-b", "rot-c")


@dataclass
class Image:
    registry: str
    layer: bytes
    digests: dict[str, str]


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> tuple[Server, list[Image]]:
    """A data dir whose registries each hold an image, built once; tests work on copies."""
    images = []
    with Server(data_dir=tmp_path_factory.mktemp("template") / "data") as srv:
        client = RegistryClient(srv.url, srv.auth)
        for name in REGISTRIES:
            srv.create_registry(name)
            layer = os.urandom(1024 * 1024 + 4321)
            images.append(Image(name, layer, client.push_image(f"{name}/app", "v1", [layer], {"r": name})))
    return srv, images


@pytest.fixture
def stopped(template: tuple[Server, list[Image]], tmp_path: Path) -> tuple[Server, list[Image]]:
    """A copy of the template's data dir, with a stopped server for it."""
    source, images = template
    server = Server(data_dir=tmp_path / "data")
    shutil.copytree(source.data_dir, server.data_dir)
    return server, images


def wrapping_keys(server: Server) -> dict[str, str | None]:
    with sqlite3.connect(f"file:{server.data_dir / 'cargobay.db'}?mode=ro", uri=True) as con:
        return dict(con.execute("SELECT name, master_key_id FROM registries"))


def blob_files(server: Server) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in (server.data_dir / "storage" / "objects").rglob("*.cbe")}


def rotate(server: Server, new_key: Path, crash_at: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(server.extra_env)
    if crash_at:
        server.extra_env["CARGOBAY_CRASH_AT"] = crash_at
    try:
        return server.cli("keys", "rotate-master", "--new-key-file", str(new_key), check=False)
    finally:
        server.extra_env = env


def assert_everything_pulls(server: Server, images: list[Image]) -> None:
    with server:
        client = RegistryClient(server.url, server.auth)
        for image in images:
            assert client.get_blob(f"{image.registry}/app", image.digests["layer0"]).content == image.layer
            manifest = client.get_manifest(f"{image.registry}/app", "v1")
            assert manifest.status_code == 200 and image.registry.encode() in manifest.content


def test_rotation_rewraps_every_data_key_without_rewriting_blobs(
    stopped: tuple[Server, list[Image]], tmp_path: Path
) -> None:
    server, images = stopped
    old_id = MasterKeyFile(server.data_dir / "master.key").active_key_id
    files = blob_files(server)
    new_key = tmp_path / "new.key"
    result = rotate(server, new_key)
    assert result.returncode == 0, result.stderr
    new_id = MasterKeyFile(new_key).active_key_id
    assert f"re-wrapped {len(REGISTRIES)} data keys under master key {new_id}" in result.stdout
    assert f"retired master key(s) {old_id}" in result.stdout
    assert set(wrapping_keys(server).values()) == {new_id}
    assert MasterKeyFile(server.data_dir / "master.key").key_ids == [new_id]
    assert blob_files(server) == files
    assert_everything_pulls(server, images)
    again = rotate(server, new_key)
    assert again.returncode == 0 and "re-wrapped 0 data keys" in again.stdout


def test_rotation_to_a_key_the_operator_made(stopped: tuple[Server, list[Image]], tmp_path: Path) -> None:
    server, images = stopped
    key = generate_key()
    write_key_file(tmp_path / "made.key", [key])
    assert rotate(server, tmp_path / "made.key").returncode == 0
    assert set(wrapping_keys(server).values()) == {key_id(key)}
    assert_everything_pulls(server, images)


@pytest.mark.slow
@pytest.mark.parametrize(
    "crash_at",
    [
        "rotate.installed",
        "rotate.activated",
        "rotate.rewrapped:2",  # between two registries
        "rotate.rewrapped_all",
    ],
)
def test_a_crash_during_rotation_leaves_all_data_readable_and_a_rerun_finishes(
    stopped: tuple[Server, list[Image]], tmp_path: Path, crash_at: str
) -> None:
    server, images = stopped
    old_id = MasterKeyFile(server.data_dir / "master.key").active_key_id
    new_key = tmp_path / "new.key"
    crashed = rotate(server, new_key, crash_at)
    assert crashed.returncode == EXIT_CODE, crashed.stderr
    new_id = MasterKeyFile(new_key).active_key_id
    assert set(wrapping_keys(server).values()) <= {old_id, new_id}
    assert_everything_pulls(server, images)  # readable with the old or the new key

    finished = rotate(server, new_key)
    assert finished.returncode == 0, finished.stderr
    assert set(wrapping_keys(server).values()) == {new_id}
    assert MasterKeyFile(server.data_dir / "master.key").key_ids == [new_id]
    assert_everything_pulls(server, images)


def test_a_running_server_keeps_serving_through_a_rotation(
    stopped: tuple[Server, list[Image]], tmp_path: Path
) -> None:
    server, images = stopped
    with server:
        client = RegistryClient(server.url, server.auth)
        first, *rest = images
        assert client.get_blob(f"{first.registry}/app", first.digests["layer0"]).content == first.layer
        assert rotate(server, tmp_path / "new.key").returncode == 0
        new_id = MasterKeyFile(tmp_path / "new.key").active_key_id
        for image in images:  # cached data keys, and data keys now wrapped under a key it never loaded
            assert client.get_blob(f"{image.registry}/app", image.digests["layer0"]).content == image.layer
        server.create_registry("rot-new")
        layer = os.urandom(5000)
        digests = client.push_image("rot-new/app", "v1", [layer], {})
        assert client.get_blob("rot-new/app", digests["layer0"]).content == layer
        assert wrapping_keys(server)["rot-new"] == new_id
    assert_everything_pulls(server, rest)


def test_a_server_refuses_to_start_without_the_key_its_data_needs(
    stopped: tuple[Server, list[Image]], tmp_path: Path
) -> None:
    server, _ = stopped
    write_key_file(tmp_path / "wrong.key", [generate_key()])
    server.extra_env = {"CARGOBAY_MASTER_KEY_FILE": str(tmp_path / "wrong.key")}
    result = server.cli("migrate", check=False)
    assert result.returncode != 0
    assert "master key" in result.stderr
