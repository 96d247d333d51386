"""Read one layer blob in a single forward pass into a ``LayerInventory``.

The compression is told by magic bytes (gzip ``1f 8b`` via ``isal``'s zlib when importable, zstd
``28 b5 2f fd``, anything else is read as plain tar); the decompressed chunks feed ``TarStream``, so
each entry costs a header decode and a path check unless a cataloger wants it: only those files are
read, each under its cataloger's size cap. Executable regular files whose first bytes are ELF are
searched for Go build info without being kept in memory. Whiteouts (``.wh.<name>``) and opaque
markers (``.wh..wh..opq``) are recorded, never cataloged. Links are not followed: a wanted path that
is a link is recorded as skipped, so it still hides the lower layers' file at that path. A corrupt
or truncated layer keeps what was read before the damage and says why it stopped.
"""

from __future__ import annotations

import queue
import threading
import zlib
from collections.abc import Callable
from typing import IO, Any, BinaryIO, cast

import zstandard

from cargobay.scanning.catalogers import Cataloger, Selector, default_catalogers, gobinary
from cargobay.scanning.facts import FileFacts
from cargobay.scanning.inventory import LayerInventory
from cargobay.scanning.tarstream import TarError, TarStream

_decompressobj: Any = zlib.decompressobj
_inflate_errors: tuple[type[Exception], ...] = (zlib.error,)
try:
    from isal import isal_zlib

    _decompressobj = isal_zlib.decompressobj
    _inflate_errors = (zlib.error, cast(type[Exception], isal_zlib.error))
except ImportError:  # pragma: no cover - isal ships wheels for the platforms we run on
    pass

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
READ_SIZE = 256 * 1024  # compressed bytes per read from the caller's stream
MAX_CHUNK = 4 * 1024 * 1024  # decompressed bytes per chunk: bounds memory on highly compressed data
ELF_HEAD = 64
MAX_ERRORS = 20

_DEFAULT_SELECTOR: Selector | None = None
_STREAM_ERRORS: tuple[type[BaseException], ...] = (
    TarError,
    OSError,
    EOFError,
    zstandard.ZstdError,
    MemoryError,
    *_inflate_errors,
)


class _Prefixed:
    """A reader that yields ``head`` (already consumed to sniff the format) and then the stream."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self._head = head
        self._stream = stream

    def read(self, size: int = -1) -> bytes:
        if self._head:
            if size < 0:
                data, self._head = self._head + self._stream.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            if len(data) < size:
                data += self._stream.read(size - len(data))
            return data
        return self._stream.read(size)


class _GzipChunks:
    """Decompressed chunks of a gzip stream (several members, zero padding between them allowed)."""

    def __init__(self, raw: _Prefixed) -> None:
        self._raw = raw
        self._d = _decompressobj(31)
        self._ended = False

    def __call__(self) -> bytes:
        d = self._d
        out: bytes
        while not self._ended:
            if d.unconsumed_tail:
                out = d.decompress(d.unconsumed_tail, MAX_CHUNK)
            elif d.eof:
                rest = d.unused_data.lstrip(b"\0")
                while not rest:
                    more = self._raw.read(READ_SIZE)
                    if not more:
                        self._ended = True
                        return b""
                    rest = more.lstrip(b"\0")
                d = self._d = _decompressobj(31)
                out = d.decompress(rest, MAX_CHUNK)
            else:
                data = self._raw.read(READ_SIZE)
                if not data:
                    raise EOFError("compressed stream ended before the end of the gzip member")
                out = d.decompress(data, MAX_CHUNK)
            if out:
                return out
        return b""


class _Prefetch:
    """Runs a chunk source in a thread, a few chunks ahead: isal and zstandard inflate without the GIL,
    so decompression overlaps the tar walk. ``close`` stops the thread when the walk ends early."""

    def __init__(self, source: Callable[[], bytes], depth: int = 4) -> None:
        self._source = source
        self._queue: queue.Queue[bytes | BaseException] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._done = False
        self._thread = threading.Thread(target=self._run, name="layer-inflate", daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                chunk = self._source()
                self._put(chunk)
                if not chunk:
                    return
        except BaseException as exc:  # handed to the reading thread, which raises it
            self._put(exc)

    def __call__(self) -> bytes:
        if self._done:
            return b""
        item = self._queue.get()
        if isinstance(item, BaseException):
            self._done = True
            raise item
        if not item:
            self._done = True
        return item

    def close(self) -> None:
        self._stop.set()
        self._thread.join()


def compression_of(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def chunk_source(stream: IO[bytes]) -> tuple[str, Callable[[], bytes]]:
    """The layer's compression and a function returning its next decompressed chunk (b"" at the end)."""
    head = stream.read(4)
    while 0 < len(head) < 4:
        more = stream.read(4 - len(head))
        if not more:
            break
        head += more
    kind = compression_of(head)
    raw = _Prefixed(head, stream)
    if kind == "gzip":
        return kind, _GzipChunks(raw)
    if kind == "zstd":
        source = cast("IO[bytes]", raw)
        reader = zstandard.ZstdDecompressor().stream_reader(source, read_across_frames=True, closefd=False)
        return kind, lambda: reader.read(MAX_CHUNK)
    return kind, lambda: raw.read(MAX_CHUNK)


def normalize_path(name: str) -> str | None:
    """Archive member name → image path without ``./``, leading or trailing ``/``; None for ``..``."""
    if name.startswith(("./", "/")) or "//" in name or "/." in name or name.endswith("/") or name == ".":
        parts = [p for p in name.split("/") if p not in ("", ".")]
        if ".." in parts:
            return None
        return "/".join(parts)
    if name.startswith("..") and (name == ".." or name.startswith("../")):
        return None
    return name


def _default_selector() -> Selector:
    global _DEFAULT_SELECTOR
    if _DEFAULT_SELECTOR is None:
        _DEFAULT_SELECTOR = Selector(default_catalogers())
    return _DEFAULT_SELECTOR


def _parse(cataloger: Cataloger, path: str, data: bytes) -> FileFacts:
    try:
        return cataloger.parse(path, data)
    except Exception as exc:  # a parser bug or hostile input must skip one file, not end the scan
        return FileFacts(cataloger.name, skipped=f"parser failed: {type(exc).__name__}: {exc}"[:500])


def _go_binary(tar: TarStream, size: int) -> FileFacts | None:
    head = tar.read(ELF_HEAD)
    if not head.startswith(gobinary.ELF_MAGIC):
        return None
    if size > gobinary.MAX_SIZE:
        return FileFacts(gobinary.NAME, skipped=f"ELF executable larger than {gobinary.MAX_SIZE} bytes")
    try:
        return gobinary.scan(head, tar.read)
    except _STREAM_ERRORS:
        raise  # the layer is damaged: read_layer reports it
    except Exception as exc:  # same contract as _parse
        return FileFacts(gobinary.NAME, skipped=f"parser failed: {type(exc).__name__}: {exc}"[:500])


def read_layer(
    stream: BinaryIO | IO[bytes],
    selector: Selector | None = None,
    *,
    go_binaries: bool = True,
    prefetch: bool = True,
) -> LayerInventory:
    """Catalog one layer from a synchronous binary stream (read once, front to back, never seeked).

    With ``prefetch`` a compressed layer is read and inflated in a helper thread (the stream is then
    read from that thread, never from two at once); the call still returns only when it is done.
    """
    inv = LayerInventory()
    prefetcher: _Prefetch | None = None
    try:
        inv.compression, next_chunk = chunk_source(stream)
        if prefetch and inv.compression != "none":
            next_chunk = prefetcher = _Prefetch(next_chunk)
        _walk(TarStream(next_chunk), inv, selector or _default_selector(), go_binaries)
    except _STREAM_ERRORS as exc:
        if inv.entries == 0:
            inv.errors.append(f"not a readable layer: {type(exc).__name__}: {exc}"[:500])
        else:
            inv.errors.append(
                f"layer unreadable after {inv.entries} entries: {type(exc).__name__}: {exc}"[:500]
            )
    finally:
        if prefetcher is not None:
            prefetcher.close()
    return inv


def _walk(tar: TarStream, inv: LayerInventory, selector: Selector, go_binaries: bool) -> None:
    select = selector.select
    files = inv.files
    for entry in tar.entries():
        inv.entries += 1
        path = normalize_path(entry.name)
        if path is None:
            if len(inv.errors) < MAX_ERRORS:
                inv.errors.append(f"entry with '..' ignored: {entry.name[:200]}")
            continue
        if not path:
            continue
        parent, _, base = path.rpartition("/")
        if base.startswith(WHITEOUT_PREFIX):
            if base == OPAQUE_MARKER:
                inv.opaque_dirs.append(parent)
            elif not base.startswith(WHITEOUT_PREFIX + WHITEOUT_PREFIX):
                name = base[len(WHITEOUT_PREFIX) :]
                inv.whiteouts.append(f"{parent}/{name}" if parent else name)
            continue
        cataloger = select(path)
        if cataloger is not None:
            if entry.is_regular:
                if entry.size > cataloger.max_size:
                    reason = f"larger than the {cataloger.max_size}-byte cap"
                    files[path] = FileFacts(cataloger.name, skipped=reason)
                else:
                    files[path] = _parse(cataloger, path, tar.read())
            elif entry.is_link:
                reason = f"link to {entry.linkname[:200]} not followed"
                files[path] = FileFacts(cataloger.name, skipped=reason)
            continue
        if go_binaries and entry.mode & 0o111 and entry.size >= gobinary.MIN_SIZE and entry.is_regular:
            facts = _go_binary(tar, entry.size)
            if facts is not None:
                files[path] = facts
