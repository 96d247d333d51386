"""The JWT signing key lives in the database, so every process of a deployment (each with its own
data directory) signs and checks with one key; wrapped by the master key when encryption is on, taken
over from an earlier release's jwt.key, re-wrapped by a master-key rotation. SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from cargobay.auth.jwt_tokens import TokenSigner
from cargobay.db.engine import Database
from cargobay.db.queries import encryption
from cargobay.services.keys import activate, rotate_master_key, signing_key
from cargobay.storage.keys import MasterKeyFile, key_id, write_key_file

OLD, NEW = b"O" * 32, b"N" * 32


@pytest.fixture
def keyring(tmp_path: Path) -> MasterKeyFile:
    write_key_file(tmp_path / "master.key", [OLD])
    return MasterKeyFile(tmp_path / "master.key")


def test_two_processes_with_their_own_data_dirs_share_one_key(
    db: Database, db_url: str, keyring: MasterKeyFile, tmp_path: Path
) -> None:
    activate(db, keyring)
    other = Database(db_url)
    try:
        first = signing_key(db, keyring, legacy=tmp_path / "node-a" / "jwt.key")
        second = signing_key(other, keyring, legacy=tmp_path / "node-b" / "jwt.key")
    finally:
        other.dispose()
    assert first == second and len(first) == 32
    issued = TokenSigner(first).issue("user:u", "registry.test", [], []).token
    assert TokenSigner(second).verify(issued, "registry.test") is not None


def test_the_key_is_wrapped_by_the_master_key(db: Database, keyring: MasterKeyFile) -> None:
    activate(db, keyring)
    secret = signing_key(db, keyring)
    stored, wrapped_by = db.read_sync(encryption.signing_key, "jwt")
    assert wrapped_by == key_id(OLD) and secret not in stored


def test_an_earlier_release_key_file_is_taken_over(
    db: Database, keyring: MasterKeyFile, tmp_path: Path
) -> None:
    activate(db, keyring)
    (tmp_path / "jwt.key").write_bytes(b"K" * 32)
    assert signing_key(db, keyring, legacy=tmp_path / "jwt.key") == b"K" * 32
    (tmp_path / "jwt.key").write_bytes(b"X" * 32)  # once in the database, the file no longer counts
    assert signing_key(db, keyring, legacy=tmp_path / "jwt.key") == b"K" * 32


def test_a_key_stored_without_encryption_is_wrapped_once_it_is_on(
    db: Database, keyring: MasterKeyFile
) -> None:
    plain = signing_key(db, None)
    assert db.read_sync(encryption.signing_key, "jwt") == (plain, None)
    activate(db, keyring)
    assert signing_key(db, keyring) == plain
    stored, wrapped_by = db.read_sync(encryption.signing_key, "jwt")
    assert wrapped_by == key_id(OLD) and stored != plain
    assert signing_key(db, keyring) == plain


def test_a_rotation_rewraps_it_and_keeps_it(db: Database, keyring: MasterKeyFile, tmp_path: Path) -> None:
    activate(db, keyring)
    secret = signing_key(db, keyring)
    keyring.install(NEW)
    rotate_master_key(db, keyring, key_id(NEW))
    assert db.read_sync(encryption.signing_key, "jwt")[1] == key_id(NEW)
    assert key_id(OLD) not in db.read_sync(encryption.master_key_ids_in_use)
    keyring.retain({key_id(NEW)})
    assert signing_key(db, MasterKeyFile(keyring.path)) == secret
