"""Filesystem driver: staged objects under ``staging/``, committed ones under ``objects/``.

A commit fsyncs the staged file, renames it into place (atomic on POSIX) and fsyncs the directory, so
a crash at any instant leaves the object either absent or complete.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import AsyncIterable, AsyncIterator
from io import RawIOBase
from pathlib import Path

import anyio.to_thread

from cargobay.storage.base import Chunk, ObjectNotFound
from cargobay.storage.streams import SerialOffload, file_chunks, iterate_in_thread


class FilesystemStore:
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

    # -- committed -------------------------------------------------------------------------
    async def stat(self, key: str) -> int | None:
        try:
            return os.stat(self._path(self._objects, key)).st_size
        except FileNotFoundError:
            return None

    def reader(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self._read(self._path(self._objects, key), offset, length)

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

    def open_raw(self, key: str, offset: int = 0, *, staged: bool = False) -> RawIOBase:
        path = self._path(self._staging if staged else self._objects, key)
        try:
            f = open(path, "rb", buffering=0)  # noqa: SIM115 - the caller closes it
        except (FileNotFoundError, IsADirectoryError):
            raise ObjectNotFound(key) from None
        if offset:
            f.seek(offset)
        return f

    async def put(self, key: str, data: bytes) -> None:
        target = self._path(self._objects, key)
        await anyio.to_thread.run_sync(self._put_sync, target, data)

    def _put_sync(self, target: Path, data: bytes) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._tmp / f"{os.getpid()}-{id(data)}-{target.name}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
        fsync_dir(target.parent)

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(self._objects, key))

    def list(self, prefix: str) -> AsyncIterator[str]:
        return self._list(self._objects, prefix)

    async def _list(self, base: Path, prefix: str) -> AsyncIterator[str]:
        start = self._path(base, prefix.rstrip("/")) if prefix.strip("/") else base
        keys = await anyio.to_thread.run_sync(_walk, base, start)
        for key in keys:
            yield key

    # -- staged ----------------------------------------------------------------------------
    async def append(self, key: str, chunks: AsyncIterable[Chunk]) -> int:
        path = self._path(self._staging, key)
        f = await anyio.to_thread.run_sync(_open_append, path)
        flusher = _Flusher(f.fileno())
        writing = SerialOffload("cargobay-write")
        try:
            async for chunk in chunks:
                if chunk:
                    await writing.submit(f.write, chunk)
                    flusher.wrote(len(chunk))
            await writing.drain()
            return int(f.tell())
        finally:
            await writing.close()
            await anyio.to_thread.run_sync(flusher.stop)
            await anyio.to_thread.run_sync(f.close)

    async def staged_size(self, key: str) -> int | None:
        try:
            return os.stat(self._path(self._staging, key)).st_size
        except FileNotFoundError:
            return None

    def staged_reader(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self._read(self._path(self._staging, key), offset, length)

    async def truncate(self, key: str, size: int) -> None:
        path = self._path(self._staging, key)
        try:
            os.truncate(path, size)
        except FileNotFoundError:
            raise ObjectNotFound(key) from None

    async def commit(self, staged_key: str, key: str) -> None:
        source = self._path(self._staging, staged_key)
        target = self._path(self._objects, key)
        await anyio.to_thread.run_sync(self._commit_sync, source, target)

    def _commit_sync(self, source: Path, target: Path) -> None:
        try:
            fd = os.open(source, os.O_RDONLY)
        except FileNotFoundError:
            raise ObjectNotFound(source.name) from None
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)
        fsync_dir(target.parent)

    async def discard(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(self._staging, key))

    def list_staged(self, prefix: str) -> AsyncIterator[str]:
        return self._list(self._staging, prefix)

    async def close(self) -> None:
        return None


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


def _open_append(path: Path):  # type: ignore[no-untyped-def]
    path.parent.mkdir(parents=True, exist_ok=True)
    return open(path, "ab", buffering=0)


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
