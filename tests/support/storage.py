"""Blob stores for storage tests: each driver, and the encryption wrapper over it."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterable

from cargobay.storage.base import BlobStore, WriterState
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


async def write_chunks(
    store: BlobStore, key: str, data: bytes, chunk: int = 1 << 20, state: WriterState | None = None
) -> WriterState:
    """Continue (or begin) a writer for ``key`` with ``data``, suspend it and return its state."""
    writer = await store.writer(key, state)
    try:
        for start in range(0, len(data), chunk):
            await writer.write(data[start : start + chunk])
        return await writer.suspend()
    finally:
        await writer.close()


async def fill(store: BlobStore, key: str, data: bytes, chunk: int = 1 << 20) -> int:
    """Write a whole object through a writer, in chunks of ``chunk`` bytes, and commit it."""
    writer = await store.writer(key)
    try:
        for start in range(0, len(data), chunk):
            await writer.write(data[start : start + chunk])
    except BaseException:
        await writer.close()
        raise
    return await writer.commit()


class Streamed:
    """A driver as seen through its ``BlobStore`` methods only (no raw reads): what a driver whose
    client library is async would offer."""

    def __init__(self, inner: BlobStore) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> object:
        if name == "open_raw":
            raise AttributeError(name)
        return getattr(self.inner, name)
