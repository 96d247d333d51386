"""Sealing small records (manifest bodies) per namespace; the no-op twin serves when encryption is off."""

from __future__ import annotations

import os
import struct
from typing import Protocol

import anyio.to_thread
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from cargobay.storage.base import IntegrityError
from cargobay.storage.keys import DataKeySource

# Starts with NUL, so no JSON document (a manifest) can be mistaken for a sealed record.
SEALED_PREFIX = b"\x00CBS\x01"
_NONCE = 12
_IN_THREAD = 256 * 1024  # larger records are sealed and opened off the event loop


class Sealer(Protocol):
    async def seal(self, namespace: str, context: bytes, data: bytes) -> bytes:
        """Protect ``data`` for ``namespace``; ``context`` is bound as associated data."""
        ...

    async def open(self, namespace: str, context: bytes, sealed: bytes) -> bytes:
        """Inverse of seal; raises storage.base.IntegrityError on any mismatch."""
        ...


class PlainSealer:
    """Stores records as they are (encryption at rest switched off)."""

    async def seal(self, namespace: str, context: bytes, data: bytes) -> bytes:
        return data

    async def open(self, namespace: str, context: bytes, sealed: bytes) -> bytes:
        return sealed


def is_sealed(record: bytes) -> bool:
    return record.startswith(SEALED_PREFIX)


class AeadSealer:
    """AES-256-GCM with the namespace's data key: ``prefix || nonce || ciphertext || tag``.

    Records stored before encryption was on (no prefix) are returned as they are while
    ``allow_plaintext`` says such records may exist, and refused otherwise.
    """

    def __init__(self, keys: DataKeySource, allow_plaintext: bool = False) -> None:
        self.keys = keys
        self.allow_plaintext = allow_plaintext

    async def seal(self, namespace: str, context: bytes, data: bytes) -> bytes:
        aead = AESGCM(await self.keys.data_key(namespace))
        nonce = os.urandom(_NONCE)
        aad = _associated(namespace, context)
        if len(data) >= _IN_THREAD:
            sealed = await anyio.to_thread.run_sync(aead.encrypt, nonce, data, aad)
        else:
            sealed = aead.encrypt(nonce, data, aad)
        return SEALED_PREFIX + nonce + sealed

    async def open(self, namespace: str, context: bytes, sealed: bytes) -> bytes:
        if not is_sealed(sealed):
            if self.allow_plaintext:
                return sealed
            raise IntegrityError("record is not sealed where only sealed records may be")
        start = len(SEALED_PREFIX)
        if len(sealed) < start + _NONCE + 16:
            raise IntegrityError("sealed record is truncated")
        aead = AESGCM(await self.keys.data_key(namespace))
        nonce, body = sealed[start : start + _NONCE], sealed[start + _NONCE :]
        aad = _associated(namespace, context)
        try:
            if len(body) >= _IN_THREAD:
                return await anyio.to_thread.run_sync(aead.decrypt, nonce, body, aad)
            return aead.decrypt(nonce, body, aad)
        except InvalidTag:
            raise IntegrityError("sealed record failed authentication") from None


def _associated(namespace: str, context: bytes) -> bytes:
    ns = namespace.encode()
    return SEALED_PREFIX + struct.pack(">H", len(ns)) + ns + context
