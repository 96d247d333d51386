"""Filesystem driver: objects under ``objects/``, writers' data under ``staging/`` until commit.

A writer appends to one file, ``staging/{namespace}/uploads/{object id}`` (where the release before
writers kept its staged uploads, so those continue in place), holding an exclusive ``flock`` on it
while open: processes sharing the data directory never write one upload at once. Its state is the
size it had when suspended (after an ``fdatasync``); bytes past that size are a chunk that failed,
and the next writer cuts them off. A commit fsyncs the file, renames it into place (atomic on POSIX)
and fsyncs the directory, so a crash at any instant leaves the object either absent or complete.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import AsyncIterator, Sequence
from io import RawIOBase
from pathlib import Path
from typing import BinaryIO

import anyio.to_thread

from cargobay.storage.base import (
    Chunk,
    ObjectNotFound,
    WriterBusy,
    WriterLost,
    WriterState,
    upload_key,
)
from cargobay.storage.streams import SerialOffload, file_chunks, iterate_in_thread

LOCK_TIMEOUT = 30.0  # seconds a writer waits for another process's writer of the same upload


class FilesystemStore:
    files = True  # raw reads are files (see RawReads)

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).resolve()
        self._objects = self.root / "objects"
        self._staging = self.root / "staging"
        self._tmp = self.root / "tmp"
        for directory in (self._objects, self._staging, self._tmp):
            directory.mkdir(parents=True, exist_ok=True)

    def _path(self, base: Path, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
            raise ValueError(f"invalid storage key {key!r}")
        return base.joinpath(*parts)

    def object_path(self, key: str) -> Path:
        return self._path(self._objects, key)

    def staging_path(self, key: str) -> Path:
        """The file a writer for ``key`` appends to."""
        return self._path(self._staging, upload_key(key))

    # -- reading ---------------------------------------------------------------------------
    async def stat(self, key: str) -> int | None:
        try:
            return os.stat(self.object_path(key)).st_size
        except FileNotFoundError:
            return None

    def reader(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self._read(self.object_path(key), offset, length)

    async def _read(self, path: Path, offset: int, length: int | None) -> AsyncIterator[bytes]:
        chunks = iterate_in_thread(lambda: file_chunks(str(path), offset, length))
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            return
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFound(path.name) from None
        yield first
        async for chunk in chunks:
            yield chunk

    def open_raw(self, key: str, offset: int = 0) -> RawIOBase:
        try:
            f = open(self.object_path(key), "rb", buffering=0)  # noqa: SIM115 - the caller closes it
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFound(key) from None
        if offset:
            f.seek(offset)
        return f

    # -- writing ---------------------------------------------------------------------------
    async def put(self, key: str, data: bytes) -> None:
        target = self.object_path(key)
        await anyio.to_thread.run_sync(self._put_sync, target, data)

    def _put_sync(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / f"{os.getpid()}-{threading.get_ident()}-{id(data)}-{target.name}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)

    async def writer(self, key: str, state: WriterState | None = None) -> FileWriter:
        target = self.object_path(key)
        staging = self.staging_path(key)
        size = None if state is None else int(state["size"])
        f = await anyio.to_thread.run_sync(_open_staging, staging, size)
        return FileWriter(f, staging, target, 0 if size is None else size)

    async def discard(self, key: str, state: WriterState | None) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.staging_path(key))

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.object_path(key))

    async def delete_many(self, keys: Sequence[str]) -> None:
        """The unlinks run in a worker thread: thousands of them never hold up the event loop."""
        paths = [self.object_path(key) for key in keys]
        if paths:
            await anyio.to_thread.run_sync(_unlink_all, paths)

    def list(self, prefix: str) -> AsyncIterator[str]:
        return self._list(self._objects, prefix)

    async def _list(self, base: Path, prefix: str) -> AsyncIterator[str]:
        start = self._path(base, prefix.rstrip("/")) if prefix.strip("/") else base
        keys = await anyio.to_thread.run_sync(_walk, base, start)
        for key in keys:
            yield key

    async def close(self) -> None:
        return None


def _unlink_all(paths: Sequence[Path]) -> None:
    for path in paths:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


class FileWriter:
    """Appends to a staging file it holds an exclusive lock on; see the module docstring."""

    def __init__(self, f: BinaryIO, staging: Path, target: Path, size: int) -> None:
        self._f = f
        self._staging = staging
        self._target = target
        self._size = size
        self._settled = False  # bytes past the state's size are cut off before the first write
        self._writing = SerialOffload("cargobay-write")
        self._flusher = _Flusher(f.fileno())
        self._closed = False

    @property
    def size(self) -> int:
        return self._size

    async def _settle(self) -> None:
        if not self._settled:
            await anyio.to_thread.run_sync(_cut, self._f, self._size)
            self._settled = True

    async def write(self, data: Chunk) -> None:
        if not data:
            return
        await self._settle()
        await self._writing.submit(self._f.write, data)
        self._size += len(data)
        self._flusher.wrote(len(data))

    async def suspend(self) -> WriterState:
        await self._settle()
        await self._writing.drain()
        await anyio.to_thread.run_sync(os.fdatasync, self._f.fileno())
        return {"size": self._size}

    async def commit(self) -> int:
        await self._settle()
        await self._writing.drain()
        await self._stop()
        try:
            await anyio.to_thread.run_sync(self._publish)
        finally:
            await self.close()
        return self._size

    def _publish(self) -> None:
        os.fsync(self._f.fileno())
        self._target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self._staging, self._target)
        fsync_dir(self._target.parent)

    async def cancel(self) -> None:
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._staging)
        finally:
            await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        await self._writing.close()
        await self._stop()
        await anyio.to_thread.run_sync(self._f.close)  # releases the lock

    async def _stop(self) -> None:
        await anyio.to_thread.run_sync(self._flusher.stop)


def _open_staging(path: Path, size: int | None) -> BinaryIO:
    """The staging file, locked: new (``size`` None) or holding at least ``size`` bytes. Nothing is cut
    off yet: the caller may still find it has no business writing (see ``FileWriter._settle``)."""
    if size is None:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT if size is None else 0), 0o644)
    except FileNotFoundError:
        raise WriterLost(f"{path.name}: the upload's data is gone") from None
    f = os.fdopen(fd, "r+b", buffering=0)
    try:
        _lock(f, path)
        if size is not None and os.fstat(fd).st_size < size:
            raise WriterLost(f"{path.name} holds fewer bytes than its upload recorded")
    except BaseException:
        f.close()
        raise
    return f


def _lock(f: BinaryIO, path: Path) -> None:
    """Take the file's exclusive lock, then make sure it is still the staging file (a writer that
    held the lock meanwhile may have published or removed it)."""
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise WriterBusy(f"{path.name} is being written by another request") from None
            time.sleep(0.02)
    try:
        same = os.stat(path).st_ino == os.fstat(f.fileno()).st_ino
    except FileNotFoundError:
        same = False
    if not same:
        raise WriterLost(f"{path.name}: the upload was finished or cancelled meanwhile")


def _cut(f: BinaryIO, size: int) -> None:
    if os.fstat(f.fileno()).st_size != size:
        f.truncate(size)
    f.seek(size)


class _Flusher:
    """Writes a growing file back to disk in the background while more data arrives.

    The commit must fsync before it publishes; flushing as we go keeps that final fsync short, so
    the disk works while the network does instead of afterwards.
    """

    EVERY = 64 * 1024 * 1024

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pending = 0
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def wrote(self, nbytes: int) -> None:
        self._pending += nbytes
        if self._pending >= self.EVERY:
            self._pending = 0
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="cargobay-flusher", daemon=True)
                self._thread.start()
            self._wake.set()

    def _run(self) -> None:
        while True:
            self._wake.wait()
            self._wake.clear()
            if self._stopped:
                return
            os.fdatasync(self._fd)

    def stop(self) -> None:
        """Wait for a flush in progress (the file is closed next); the commit syncs the rest."""
        if self._thread is not None:
            self._stopped = True
            self._wake.set()
            self._thread.join()
            self._thread = None


def fsync_dir(directory: Path) -> None:
    """Make a rename or a new file in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _walk(base: Path, start: Path) -> list[str]:
    if start.is_file():
        return [start.relative_to(base).as_posix()]
    keys: list[str] = []
    for dirpath, _dirs, files in os.walk(start):
        for name in files:
            keys.append((Path(dirpath) / name).relative_to(base).as_posix())
    keys.sort()
    return keys
