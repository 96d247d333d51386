"""The ``BlobStore`` interface every driver (and the encryption wrapper) implements: object-store shaped.

Objects are immutable once written and addressed by slash-separated keys. Small objects are written
with ``put``; large ones, and uploads that arrive in several requests, through a ``BlobWriter``
(distribution's ``FileWriter``): ``write`` chunks, then ``commit`` (publish at the writer's key,
atomically: a reader sees all of it or nothing, also across a crash) or ``cancel``. Between two
requests a writer is ``suspend``-ed into a ``WriterState``, a small JSON document the caller keeps
(in the upload's database row); any process continues the writer from it, and nothing written
before is read again. No request path lists keys: ``list`` is for garbage-collection sweeps.

Key convention (the encryption wrapper and the drivers rely on it): the first path component is the
*namespace* (a registry id) and the last is the *object id*, e.g. ``{registry}/blobs/{oid[:2]}/{oid}``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from io import RawIOBase
from typing import Any, Protocol, runtime_checkable

Chunk = bytes | memoryview
"""What readers yield: bytes, or a view of a buffer nobody else holds (no copy just to type it)."""

WriterState = dict[str, Any]
"""Where a suspended writer stands: JSON-serialisable, opaque to everyone but the store that made it."""


class StorageConfigError(ValueError):
    """``CARGOBAY_STORAGE_URL`` names no store this process can use (a bad scheme or parameter, or a
    parameter the other settings rule out): said once, at start."""


class ObjectNotFound(Exception):
    """The key names no object (of the kind asked for)."""


class WriterLost(ObjectNotFound):
    """What a writer state describes is no longer stored as it was (cancelled, expired, or changed
    by a writer that did not record its state): the upload cannot continue, nothing was changed."""


class WriterBusy(Exception):
    """Another writer holds the object (a concurrent request on the same upload); try again later."""


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
class BlobWriter(Protocol):
    """Writes one object, possibly over several requests and processes.

    After ``write`` fails the writer is broken: ``close`` it; the last state returned by ``suspend``
    still resumes the object as it was then (a failed or partial chunk leaves no trace). A writer
    may keep a reference to the data it was given until ``suspend``, ``commit`` or ``cancel``.
    """

    @property
    def size(self) -> int:
        """Bytes written so far, by this writer and the ones it continues."""
        ...

    async def write(self, data: Chunk) -> None: ...

    async def suspend(self) -> WriterState:
        """Make everything written durable and return the state to continue from.

        The writer stays open (a driver may keep the object to itself) until ``close``: callers
        record the state first, then close, so no other writer resumes from an older state meanwhile.
        """
        ...

    async def commit(self) -> int:
        """Publish everything written at the writer's key, replacing any object there; returns its
        size. Temporary data (parts, tails) is gone afterwards; the writer is closed."""
        ...

    async def cancel(self) -> None:
        """Drop everything written, also by the writers this one continues; the writer is closed."""
        ...

    async def close(self) -> None:
        """Release the writer without changing what is stored (after ``suspend``, or a failure)."""
        ...


@runtime_checkable
class BlobStore(Protocol):
    async def stat(self, key: str) -> int | None:
        """Size in bytes of an object, or None when absent."""
        ...

    def reader(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[Chunk]:
        """Stream ``length`` bytes (default: to the end) from ``offset``; raises ObjectNotFound."""
        ...

    async def put(self, key: str, data: bytes) -> None:
        """Write a whole (small) object atomically, replacing any previous one."""
        ...

    async def writer(self, key: str, state: WriterState | None = None) -> BlobWriter:
        """A writer of a new object to be published at ``key``, or one continuing ``state`` (what
        ``suspend`` returned for the same key); raises WriterLost when that state cannot continue."""
        ...

    async def discard(self, key: str, state: WriterState | None) -> None:
        """Drop what a writer for ``key`` left behind (``state``: its last one, None if unknown);
        absent is no error. For uploads that expire or are cancelled without a live writer."""
        ...

    async def delete(self, key: str) -> None:
        """Remove an object; absent is not an error."""
        ...

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Remove objects in batches (garbage collection); absent ones are no error."""
        ...

    def list(self, prefix: str) -> AsyncIterator[str]:
        """Keys of objects under ``prefix`` (a namespace or deeper): for sweeps, never a request."""
        ...

    async def close(self) -> None: ...


@runtime_checkable
class RawReads(Protocol):
    """Blocking access to stored bytes, for code that already runs in a worker thread.

    An optional capability, not part of the contract: the encryption envelope reads through it when
    the driver below offers it (files), opening segments where the bytes already are, and through
    ``reader`` otherwise.
    """

    files: bool
    """Whether raw readers are files, whose page cache a non-blocking read may ask (see encrypted.py)."""

    def open_raw(self, key: str, offset: int = 0) -> RawIOBase:
        """A blocking reader positioned at ``offset``; raises ObjectNotFound. Close it when done."""
        ...


@runtime_checkable
class RedirectReads(Protocol):
    """Clients fetch an object straight from the store, at a URL the driver signs (S3 presigned GETs).

    An optional capability, not part of the contract: a driver offers it when its URL asks for it
    (``redirects``). The encryption wrapper never does: its driver holds ciphertext.
    """

    redirects: bool

    async def redirect_url(self, key: str) -> str:
        """A URL that answers a plain GET (and ranged ones) with the object's bytes, for a while."""
        ...


def split_key(key: str) -> tuple[str, str]:
    """(namespace, object id) of a key, per the convention above."""
    parts = key.split("/")
    if len(parts) < 2 or not all(parts):
        raise ValueError(f"malformed storage key {key!r}")
    return parts[0], parts[-1]


def upload_key(key: str) -> str:
    """Where a writer for ``key`` keeps its data until commit: ``{namespace}/uploads/{object id}``.

    The layout of the release before writers (its staged objects live there), so an upload that was
    in progress at the upgrade continues in place.
    """
    namespace, object_id = split_key(key)
    return f"{namespace}/uploads/{object_id}"
