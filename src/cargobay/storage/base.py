"""The ``BlobStore`` interface every driver (and the encryption wrapper) implements.

Two kinds of objects, addressed by slash-separated keys:

* **staged** objects grow by ``append`` (an upload in progress) and may be truncated;
* **committed** objects are immutable; ``commit`` publishes a staged object atomically (a reader sees
  all of it or nothing, also across a crash), ``put`` writes a small one in one step.

Key convention (the encryption wrapper relies on it): the first path component is the *namespace*
(a registry id) and the last is the *object id*; ``commit`` keeps both, e.g.
``{registry}/uploads/{oid}`` -> ``{registry}/blobs/{oid[:2]}/{oid}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from io import RawIOBase
from typing import Protocol, runtime_checkable

Chunk = bytes | memoryview
"""What readers yield: bytes, or a view of a buffer nobody else holds (no copy just to type it)."""


class ObjectNotFound(Exception):
    """The key names no object (of the kind asked for)."""


class IntegrityError(Exception):
    """Stored bytes failed verification (tampered, truncated or misplaced); never serve them.

    ``key`` names the stored object and ``digest`` the content it should hold, when known, so the
    layer that reports the failure can say which data is damaged.
    """

    def __init__(self, message: str, *, key: str | None = None, digest: str | None = None) -> None:
        super().__init__(message)
        self.key = key
        self.digest = digest


@runtime_checkable
class BlobStore(Protocol):
    # -- committed objects ------------------------------------------------------------------
    async def stat(self, key: str) -> int | None:
        """Size in bytes of a committed object, or None when absent."""
        ...

    def reader(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[Chunk]:
        """Stream ``length`` bytes (default: to the end) from ``offset``; raises ObjectNotFound."""
        ...

    async def put(self, key: str, data: bytes) -> None:
        """Write a whole (small) committed object atomically, replacing any previous one."""
        ...

    async def delete(self, key: str) -> None:
        """Remove a committed object; absent is not an error."""
        ...

    def list(self, prefix: str) -> AsyncIterator[str]:
        """Keys of committed objects under ``prefix`` (a namespace or deeper)."""
        ...

    # -- staged objects ---------------------------------------------------------------------
    async def append(self, key: str, chunks: AsyncIterable[Chunk]) -> int:
        """Append to a staged object (created when absent); returns its new size."""
        ...

    async def staged_size(self, key: str) -> int | None: ...

    def staged_reader(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[Chunk]: ...

    async def truncate(self, key: str, size: int) -> None:
        """Cut a staged object back to ``size`` bytes (drops a partly received chunk)."""
        ...

    async def commit(self, staged_key: str, key: str) -> None:
        """Publish a staged object under ``key`` atomically; the staged object is gone afterwards."""
        ...

    async def discard(self, key: str) -> None:
        """Remove a staged object; absent is not an error."""
        ...

    def list_staged(self, prefix: str) -> AsyncIterator[str]: ...

    async def close(self) -> None: ...


@runtime_checkable
class RawReads(Protocol):
    """Blocking access to stored bytes, for code that already runs in a worker thread.

    Wrappers that transform data (the encryption envelope) read through this: reading and
    transforming in one thread, exact sizes at a time, costs a fraction of going through the event
    loop for every block. A driver whose client library is blocking (files, boto3) offers it cheaply.
    """

    def open_raw(self, key: str, offset: int = 0, *, staged: bool = False) -> RawIOBase:
        """A blocking reader positioned at ``offset``; raises ObjectNotFound. Close it when done."""
        ...


class RawBlobStore(BlobStore, RawReads, Protocol):
    """A driver: the BlobStore interface plus blocking raw reads (what wrappers sit on)."""


def split_key(key: str) -> tuple[str, str]:
    """(namespace, object id) of a key, per the convention above."""
    parts = key.split("/")
    if len(parts) < 2 or not all(parts):
        raise ValueError(f"malformed storage key {key!r}")
    return parts[0], parts[-1]
