"""Per-registry data keys and the master keys that wrap them: first use, caching, rotation.

A registry's data key is made on first use, wrapped under the active master key (the one recorded in
``encryption.encryption_state``) and stored with compare-and-swap, so concurrent processes agree on one key.
Rotation re-wraps every data key under a new master key, one registry per transaction; each row names
the master key that wraps it, so a crash at any point leaves every data key readable with the old or
the new key, and running the rotation again finishes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread
from sqlalchemy.orm import Session

from cargobay.db.engine import Database
from cargobay.db.queries import encryption
from cargobay.db.types import utcnow
from cargobay.domain.errors import DomainError, InvalidInput
from cargobay.faults import crash_point
from cargobay.logs import get_logger
from cargobay.storage.base import IntegrityError
from cargobay.storage.keys import (
    KeyProvider,
    MasterKeyFile,
    MasterKeyUnavailable,
    UnknownNamespace,
    generate_key,
)

log = get_logger("cargobay.keys")


class DataKeys:
    """The ``DataKeySource`` of the encryption layer: data keys by registry id, unwrapped in memory."""

    def __init__(self, db: Database, provider: KeyProvider) -> None:
        self.db = db
        self.provider = provider
        self._cache: dict[str, bytes] = {}

    async def data_key(self, namespace: str) -> bytes:
        key = self._cache.get(namespace)
        if key is None:
            key = await anyio.to_thread.run_sync(self._load, namespace)
            self._cache[namespace] = key
        return key

    def _load(self, registry_id: str) -> bytes:
        row = self.db.read_sync(encryption.wrapped_key, registry_id)
        if row is not None and row[0] is None:
            self._create(registry_id)
            row = self.db.read_sync(encryption.wrapped_key, registry_id)
        if row is None or row[0] is None or row[1] is None:
            raise UnknownNamespace(registry_id)
        return unwrap(self.provider, row[1], row[0], registry_id)

    def _create(self, registry_id: str) -> None:
        data_key = generate_key()
        for _ in range(5):
            key_id = self.db.read_sync(encryption.active_key_id)
            if key_id is None:
                raise MasterKeyUnavailable("no active master key is recorded (encryption was never started)")
            wrapped = wrap(self.provider, key_id, data_key, registry_id)
            if self.db.write_sync(encryption.store_new_key, registry_id, wrapped, key_id):
                return
        raise MasterKeyUnavailable("the active master key kept changing while a data key was made")


def wrap(provider: KeyProvider, key_id: str, data_key: bytes, registry_id: str) -> bytes:
    _need(provider, key_id)
    return provider.wrap(key_id, data_key, registry_id.encode())


def unwrap(provider: KeyProvider, key_id: str, wrapped: bytes, registry_id: str) -> bytes:
    _need(provider, key_id)
    try:
        return provider.unwrap(key_id, wrapped, registry_id.encode())
    except ValueError as exc:
        raise IntegrityError(f"data key of registry {registry_id}: {exc}") from None


def _need(provider: KeyProvider, key_id: str) -> None:
    """Have ``key_id`` at hand, reloading once: another process may have added it (a rotation)."""
    if not provider.has_key(key_id):
        provider.refresh()
        if not provider.has_key(key_id):
            raise MasterKeyUnavailable(f"master key {key_id} is not available")


# -- master keys ------------------------------------------------------------------------------
def open_master_key_file(db: Database, path: Path, configured: bool) -> MasterKeyFile:
    """The master key file; on a first start without a configured file, one is generated (0600)."""
    if path.exists() or configured:
        keys = MasterKeyFile(path)
        if keys.readable_by_others:
            log.warning("master_key_file_readable_by_others", path=str(path), hint="chmod 600")
        return keys
    if db.read_sync(encryption.has_data_keys):
        raise MasterKeyUnavailable(f"{path} is missing, yet data keys wrapped by a master key are stored")
    keys = MasterKeyFile.create(path)
    log.warning(
        "master_key_generated",
        path=str(path),
        hint="the key lies beside the data it protects: keep a copy elsewhere, "
        "or set CARGOBAY_MASTER_KEY_FILE to a key kept off this disk",
    )
    return keys


def activate(db: Database, provider: KeyProvider) -> tuple[str, bool]:
    """At start with encryption on: record the active master key on the first start, check that it
    is at hand; returns it and whether plaintext data may exist."""

    def work(session: Session) -> tuple[str, bool]:
        state = encryption.encryption_state(session)
        if state.active_master_key_id is None:
            state.active_master_key_id = provider.active_key_id
            state.updated_at = utcnow()
        return state.active_master_key_id, state.plaintext_may_exist

    key_id, plaintext = db.write_sync(work)
    _need(provider, key_id)
    return key_id, plaintext


def _rewrap(session: Session, provider: KeyProvider, registry_id: str, key_id: str) -> bool:
    row = encryption.wrapped_key_for_update(session, registry_id)
    if row is None or row[0] is None or row[1] == key_id:
        return False
    old_wrapped: bytes = row[0]
    old_key_id = row[1]
    if old_key_id is None:
        raise MasterKeyUnavailable(
            f"registry {registry_id} does not record which master key wraps its data key"
        )
    data_key = unwrap(provider, old_key_id, old_wrapped, registry_id)
    encryption.replace_wrapped_key(
        session, registry_id, old_wrapped, wrap(provider, key_id, data_key, registry_id), key_id
    )
    return True


def rotate_master_key(db: Database, provider: KeyProvider, new_key_id: str, batch: int = 100) -> int:
    """Make ``new_key_id`` the active master key and re-wrap every data key under it; returns how many
    were re-wrapped. Blobs and manifests are untouched: their data keys stay the same."""
    _need(provider, new_key_id)
    db.write_sync(encryption.set_active_key, new_key_id)
    crash_point("rotate.activated")
    count = 0
    while registry_ids := db.read_sync(encryption.wrapped_elsewhere, new_key_id, batch):
        for registry_id in registry_ids:
            if db.write_sync(_rewrap, provider, registry_id, new_key_id):
                count += 1
                log.info("data_key_rewrapped", registry_id=registry_id, master_key_id=new_key_id)
                crash_point("rotate.rewrapped")
    for name in db.read_sync(encryption.signing_keys_elsewhere, new_key_id):
        db.write_sync(_rewrap_signing_key, provider, name, new_key_id)
        log.info("signing_key_rewrapped", name=name, master_key_id=new_key_id)
    return count


def _rewrap_signing_key(session: Session, provider: KeyProvider, name: str, key_id: str) -> None:
    row = encryption.signing_key(session, name)
    if row is None or row[1] == key_id:
        return
    stored, old_key_id = row
    secret = _open_signing_key(provider, name, stored, old_key_id)
    encryption.replace_signing_key(
        session, name, stored, _wrap_signing_key(provider, key_id, name, secret), key_id
    )


# -- signing keys ---------------------------------------------------------------------------
def signing_key(
    db: Database, provider: KeyProvider | None, name: str = "jwt", legacy: Path | None = None
) -> bytes:
    """The key every process of the deployment signs ``name`` tokens with, kept in the database
    (wrapped by the active master key when encryption is on); made on first use, or taken over from
    the key file an earlier release kept in the data directory (``legacy``)."""
    row = db.read_sync(encryption.signing_key, name)
    if row is None:
        secret = legacy.read_bytes() if legacy is not None and legacy.is_file() else generate_key()
        key_id = db.read_sync(encryption.active_key_id) if provider is not None else None
        stored = _wrap_signing_key(provider, key_id, name, secret) if provider and key_id else secret
        db.write_sync(encryption.add_signing_key, name, stored, key_id if provider else None)
        row = db.read_sync(encryption.signing_key, name)
        assert row is not None
    stored, key_id = row
    if key_id is None and provider is not None:  # stored while encryption was off: wrap it now
        active = db.read_sync(encryption.active_key_id)
        if active is not None:
            db.write_sync(
                encryption.replace_signing_key,
                name,
                stored,
                _wrap_signing_key(provider, active, name, stored),
                active,
            )
        return stored
    return _open_signing_key(provider, name, stored, key_id)


def _wrap_signing_key(provider: KeyProvider, key_id: str, name: str, secret: bytes) -> bytes:
    _need(provider, key_id)
    return provider.wrap(key_id, secret, b"signing key:" + name.encode())


def _open_signing_key(provider: KeyProvider | None, name: str, stored: bytes, key_id: str | None) -> bytes:
    if key_id is None:
        return stored
    if provider is None:
        raise MasterKeyUnavailable(
            f"the {name} signing key is wrapped by master key {key_id}: encryption must be on"
        )
    _need(provider, key_id)
    try:
        return provider.unwrap(key_id, stored, b"signing key:" + name.encode())
    except ValueError as exc:
        raise IntegrityError(f"{name} signing key: {exc}") from None


@dataclass(frozen=True)
class Rotation:
    """What a master-key rotation did; ``retire_error`` says why old keys stayed in the file."""

    new_key_id: str
    generated: bool  # the new key file did not exist and was made
    installed: bool  # the new key was added to the master key file (False: it was already there)
    rewrapped: int
    retired: tuple[str, ...]
    retire_error: str | None = None
    left_behind: tuple[str, ...] = ()


class KeyFileUnwritable(DomainError):
    """The master key file cannot be written; the operator has to add the key by hand."""


def rotate_master(db: Database, keyring: MasterKeyFile, new_key_file: Path) -> Rotation:
    """Re-wrap every registry's data key under the key in ``new_key_file`` (made, mode 0600, if absent).

    The new key is first added to the master key file (as its first, active key), every data key is
    re-wrapped under it one registry at a time, and the old key is then dropped from the file. A crash
    at any point leaves all data readable; running it again finishes it.
    """
    generated = not new_key_file.exists()
    new_keys = MasterKeyFile.create(new_key_file)
    if len(new_keys.key_ids) != 1:
        raise InvalidInput(f"{new_key_file} must hold exactly one key")
    new_id = new_keys.active_key_id
    try:
        installed = keyring.install(new_keys.key(new_id))
    except OSError as exc:
        raise KeyFileUnwritable(
            f"cannot write {keyring.path} ({exc.strerror}): add the new key as its first line yourself "
            f"(on every node that reads it), then run this command again"
        ) from None
    crash_point("rotate.installed")
    count = rotate_master_key(db, keyring, new_id)
    crash_point("rotate.rewrapped_all")
    in_use = db.read_sync(encryption.master_key_ids_in_use)
    try:
        dropped = tuple(keyring.retain(in_use))
    except OSError as exc:
        old = tuple(i for i in keyring.key_ids if i not in in_use and i != new_id)
        return Rotation(new_id, generated, installed, count, (), exc.strerror, old)
    return Rotation(new_id, generated, installed, count, dropped)
