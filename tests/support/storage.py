"""Blob stores for storage tests: each driver, and the encryption wrapper over it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable

from cargobay.storage.base import BlobStore
from cargobay.storage.keys import UnknownNamespace


class StaticKeys:
    """Data keys made up on first use, per namespace (what ``services.keys.DataKeys`` does with a DB)."""

    def __init__(self, known: Iterable[str] | None = None) -> None:
        self.keys: dict[str, bytes] = {}
        self.known = set(known) if known is not None else None

    async def data_key(self, namespace: str) -> bytes:
        if self.known is not None and namespace not in self.known:
            raise UnknownNamespace(namespace)
        return self.keys.setdefault(namespace, os.urandom(32))


async def chunks_of(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def read_all(chunks: AsyncIterator[bytes]) -> bytes:
    return b"".join([chunk async for chunk in chunks])


async def keys_of(listing: AsyncIterator[str]) -> list[str]:
    return sorted([key async for key in listing])


async def fill(store: BlobStore, key: str, data: bytes, chunk: int = 1 << 20) -> int:
    return await store.append(key, chunks_of(data, chunk))
