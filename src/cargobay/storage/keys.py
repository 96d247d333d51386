"""Master keys, which wrap the per-registry data keys, and the seam where data keys reach storage.

A data key (32 random bytes per registry) is kept in the database only wrapped by a master key:
AES-256-GCM with the registry id as associated data, so a wrapped key copied into another registry's
row does not open. ``MasterKeyFile`` keeps master keys in a file; an external KMS plugs in as another
``KeyProvider`` (see the README).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cargobay.storage.filesystem import fsync_dir

KEY_SIZE = 32
_WRAP_VERSION = b"\x01"
_WRAP_AAD = b"cargobay data key\x00"


class MasterKeyUnavailable(LookupError):
    """A master key that wraps stored data keys cannot be found."""


class UnknownNamespace(LookupError):
    """No data key can exist for this namespace (no such registry)."""


class DataKeySource(Protocol):
    """What the encryption layer asks for: the data key of a namespace (a registry id)."""

    async def data_key(self, namespace: str) -> bytes: ...


class KeyProvider(Protocol):
    """Wraps and unwraps data keys under master keys, each known by a short id.

    ``context`` is bound to the wrapped key (the registry id); unwrapping with another context, another
    key or tampered bytes raises ``ValueError``. The methods block (a KMS makes a network call), so
    callers run them in a thread.
    """

    @property
    def active_key_id(self) -> str:
        """The key a new installation starts wrapping with (the database records the one in use)."""
        ...

    def has_key(self, key_id: str) -> bool: ...

    def wrap(self, key_id: str, data_key: bytes, context: bytes) -> bytes: ...

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes: ...

    def refresh(self) -> None:
        """Load key material again (another process may have added a key during a rotation)."""
        ...


def key_id(key: bytes) -> str:
    """A master key's public name: a short fingerprint that reveals nothing about the key."""
    return hashlib.sha256(b"cargobay master key id\x00" + key).hexdigest()[:16]


def generate_key() -> bytes:
    return os.urandom(KEY_SIZE)


def parse_key_file(content: bytes) -> list[bytes]:
    """Keys of a key file: 32 raw bytes, or lines of base64 (``openssl rand -base64 32``); ``#`` comments."""
    if len(content) == KEY_SIZE:
        return [content]
    keys: list[bytes] = []
    for number, raw in enumerate(content.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        try:
            key = base64.b64decode(line, validate=True)
        except binascii.Error:
            raise ValueError(f"line {number} is not base64") from None
        if len(key) != KEY_SIZE:
            raise ValueError(f"line {number} holds {len(key)} bytes, not {KEY_SIZE}")
        keys.append(key)
    if not keys:
        raise ValueError("no key found")
    return keys


def format_key_file(keys: Iterable[bytes]) -> bytes:
    lines = [b"# cargobay master keys: the first wraps new data keys, the others only unwrap"]
    lines += [base64.b64encode(key) for key in keys]
    return b"\n".join(lines) + b"\n"


def write_key_file(path: Path, keys: Iterable[bytes], exclusive: bool = False) -> None:
    """Write a key file with mode 0600: atomically replaced, or created only if absent (``exclusive``)."""
    data = format_key_file(keys)
    path.parent.mkdir(parents=True, exist_ok=True)
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        target = path
    else:
        target = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    if not exclusive:
        try:
            os.replace(target, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(target)
            raise
    fsync_dir(path.parent)


class MasterKeyFile:
    """Master keys kept in a file, one per line: the first is the active key, the others are earlier
    keys kept readable until a rotation has re-wrapped every data key away from them."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._keys: dict[str, bytes] = {}
        self.refresh()

    @classmethod
    def create(cls, path: Path) -> MasterKeyFile:
        """Generate a new key file (mode 0600); an existing file is loaded instead, never replaced."""
        with contextlib.suppress(FileExistsError):
            write_key_file(path, [generate_key()], exclusive=True)
        return cls(path)

    def refresh(self) -> None:
        try:
            content = self.path.read_bytes()
        except FileNotFoundError:
            raise MasterKeyUnavailable(f"master key file {self.path} does not exist") from None
        try:
            keys = parse_key_file(content)
        except ValueError as exc:
            raise MasterKeyUnavailable(f"master key file {self.path}: {exc}") from None
        self._keys = {key_id(key): key for key in keys}

    @property
    def readable_by_others(self) -> bool:
        return bool(self.path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO))

    @property
    def key_ids(self) -> list[str]:
        return list(self._keys)

    @property
    def active_key_id(self) -> str:
        return next(iter(self._keys))

    def key(self, key_id: str) -> bytes:
        try:
            return self._keys[key_id]
        except KeyError:
            raise MasterKeyUnavailable(f"master key {key_id} is not in {self.path}") from None

    def has_key(self, key_id: str) -> bool:
        return key_id in self._keys

    def wrap(self, key_id: str, data_key: bytes, context: bytes) -> bytes:
        nonce = os.urandom(12)
        sealed = AESGCM(self.key(key_id)).encrypt(nonce, data_key, _WRAP_AAD + context)
        return _WRAP_VERSION + nonce + sealed

    def unwrap(self, key_id: str, wrapped: bytes, context: bytes) -> bytes:
        if len(wrapped) != 1 + 12 + KEY_SIZE + 16 or wrapped[:1] != _WRAP_VERSION:
            raise ValueError("not a wrapped data key")
        try:
            return AESGCM(self.key(key_id)).decrypt(wrapped[1:13], wrapped[13:], _WRAP_AAD + context)
        except InvalidTag:
            raise ValueError(f"wrapped data key does not open with master key {key_id}") from None

    def install(self, key: bytes) -> bool:
        """Make ``key`` the active key, keeping the others for unwrapping; False if it already was."""
        if self._keys and self.active_key_id == key_id(key):
            return False
        self._save([key, *(k for i, k in self._keys.items() if i != key_id(key))])
        return True

    def retain(self, key_ids: set[str]) -> list[str]:
        """Drop every key but the active one and ``key_ids``; returns the ids dropped."""
        keep = {self.active_key_id, *key_ids}
        dropped = [i for i in self._keys if i not in keep]
        if dropped:
            self._save([k for i, k in self._keys.items() if i in keep])
        return dropped

    def _save(self, keys: list[bytes]) -> None:
        write_key_file(self.path, keys)
        self._keys = {key_id(key): key for key in keys}
