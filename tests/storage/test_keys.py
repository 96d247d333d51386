"""Master key files: generation, formats, wrapping bound to its context, keyrings for rotation."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path

import pytest

from cargobay.storage.keys import (
    MasterKeyFile,
    MasterKeyUnavailable,
    format_key_file,
    key_id,
    parse_key_file,
    write_key_file,
)


def test_created_key_file_is_private_and_holds_one_key(tmp_path: Path) -> None:
    keys = MasterKeyFile.create(tmp_path / "master.key")
    assert stat.S_IMODE((tmp_path / "master.key").stat().st_mode) == 0o600
    assert len(keys.key_ids) == 1
    assert not keys.readable_by_others


def test_create_never_replaces_an_existing_key_file(tmp_path: Path) -> None:
    first = MasterKeyFile.create(tmp_path / "master.key")
    second = MasterKeyFile.create(tmp_path / "master.key")
    assert first.active_key_id == second.active_key_id


@pytest.mark.parametrize(
    "content",
    [
        b"K" * 32,
        base64.b64encode(b"K" * 32),
        base64.b64encode(b"K" * 32) + b"\n",
        b"# a comment\n\n" + base64.b64encode(b"K" * 32) + b"\n",
    ],
)
def test_key_files_may_be_raw_or_base64(content: bytes) -> None:
    assert parse_key_file(content) == [b"K" * 32]


@pytest.mark.parametrize("content", [b"", b"# nothing\n", b"not base64!\n", base64.b64encode(b"short")])
def test_malformed_key_files_are_refused(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "master.key").write_bytes(content)
    with pytest.raises(MasterKeyUnavailable):
        MasterKeyFile(tmp_path / "master.key")


def test_a_missing_key_file_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(MasterKeyUnavailable):
        MasterKeyFile(tmp_path / "absent.key")


def test_key_ids_are_stable_short_fingerprints() -> None:
    assert key_id(b"K" * 32) == key_id(b"K" * 32)
    assert key_id(b"K" * 32) != key_id(b"L" * 32)
    assert len(key_id(b"K" * 32)) == 16


def test_wrapped_data_key_opens_only_with_its_key_and_context(tmp_path: Path) -> None:
    write_key_file(tmp_path / "a.key", [b"A" * 32, b"B" * 32])
    keys = MasterKeyFile(tmp_path / "a.key")
    a, b = key_id(b"A" * 32), key_id(b"B" * 32)
    data_key = os.urandom(32)
    wrapped = keys.wrap(a, data_key, b"registry-1")
    assert data_key not in wrapped
    assert keys.unwrap(a, wrapped, b"registry-1") == data_key
    with pytest.raises(ValueError):
        keys.unwrap(a, wrapped, b"registry-2")
    with pytest.raises(ValueError):
        keys.unwrap(b, wrapped, b"registry-1")
    tampered = bytearray(wrapped)
    tampered[20] ^= 1
    with pytest.raises(ValueError):
        keys.unwrap(a, bytes(tampered), b"registry-1")
    with pytest.raises(MasterKeyUnavailable):
        keys.unwrap(key_id(b"C" * 32), wrapped, b"registry-1")


def test_install_puts_the_new_key_first_and_keeps_the_old(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    write_key_file(path, [b"A" * 32])
    keys = MasterKeyFile(path)
    assert keys.install(b"B" * 32)
    assert not keys.install(b"B" * 32)
    assert keys.key_ids == [key_id(b"B" * 32), key_id(b"A" * 32)]
    assert parse_key_file(path.read_bytes()) == [b"B" * 32, b"A" * 32]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_retain_drops_keys_no_data_key_needs(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    write_key_file(path, [b"B" * 32, b"A" * 32, b"C" * 32])
    keys = MasterKeyFile(path)
    assert keys.retain({key_id(b"C" * 32)}) == [key_id(b"A" * 32)]
    assert parse_key_file(path.read_bytes()) == [b"B" * 32, b"C" * 32]
    assert keys.retain(set()) == [key_id(b"C" * 32)]
    assert keys.key_ids == [key_id(b"B" * 32)]


def test_refresh_sees_keys_added_by_another_process(tmp_path: Path) -> None:
    path = tmp_path / "master.key"
    write_key_file(path, [b"A" * 32])
    keys = MasterKeyFile(path)
    path.write_bytes(format_key_file([b"B" * 32, b"A" * 32]))
    assert not keys.has_key(key_id(b"B" * 32))
    keys.refresh()
    assert keys.has_key(key_id(b"B" * 32))
    assert keys.active_key_id == key_id(b"B" * 32)
