"""Read one layer blob in a single forward pass into a ``LayerInventory``.

The compression is told by magic bytes (gzip ``1f 8b``, zstd ``28 b5 2f fd``, anything else is read
as plain tar), the tar is walked in stream mode, and each entry costs a path check unless a
cataloger wants it: only those files are read, each under its cataloger's size cap. Executable
regular files whose first bytes are ELF are searched for Go build info without being kept in memory.
Whiteouts (``.wh.<name>``) and opaque markers (``.wh..wh..opq``) are recorded, never cataloged.
Links are not followed: a wanted path that is a link is recorded as skipped, so it still hides
the lower layers' file at that path. A corrupt or truncated layer keeps what was read before the
damage and says why it stopped.
"""

from __future__ import annotations

import tarfile
import zlib
from collections.abc import Callable
from typing import IO, Any, BinaryIO

import zstandard

from cargobay.scanning.catalogers import Cataloger, Selector, default_catalogers, gobinary
from cargobay.scanning.facts import FileFacts
from cargobay.scanning.inventory import LayerInventory

try:
    from isal import igzip as _gzip
except ImportError:  # pragma: no cover - isal ships wheels for the platforms we run on
    import gzip as _gzip  # type: ignore[no-redef]

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
WHITEOUT_PREFIX = ".wh."
OPAQUE_MARKER = ".wh..wh..opq"
TAR_BUFSIZE = 64 * 1024
ELF_HEAD = 64
MAX_ERRORS = 20

_DEFAULT_SELECTOR: Selector | None = None


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

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def compression_of(head: bytes) -> str:
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


def decompressing(stream: IO[bytes]) -> tuple[str, IO[bytes]]:
    """The layer's compression and a reader of its tar bytes."""
    head = stream.read(4)
    while 0 < len(head) < 4:
        more = stream.read(4 - len(head))
        if not more:
            break
        head += more
    kind = compression_of(head)
    raw: Any = _Prefixed(head, stream)
    if kind == "gzip":
        reader: IO[bytes] = _gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[no-untyped-call,assignment]
        return kind, reader
    if kind == "zstd":
        zreader: IO[bytes] = zstandard.ZstdDecompressor().stream_reader(
            raw, read_across_frames=True, closefd=False
        )
        return kind, zreader
    return kind, raw


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


def _go_binary(reader: IO[bytes], size: int) -> FileFacts | None:
    head = reader.read(ELF_HEAD)
    if not head.startswith(gobinary.ELF_MAGIC):
        return None
    if size > gobinary.MAX_SIZE:
        return FileFacts(gobinary.NAME, skipped=f"ELF executable larger than {gobinary.MAX_SIZE} bytes")
    read: Callable[[int], bytes] = reader.read
    try:
        return gobinary.scan(head, read)
    except Exception as exc:  # same contract as _parse
        return FileFacts(gobinary.NAME, skipped=f"parser failed: {type(exc).__name__}: {exc}"[:500])


def read_layer(
    stream: BinaryIO | IO[bytes], selector: Selector | None = None, *, go_binaries: bool = True
) -> LayerInventory:
    """Catalog one layer from a synchronous binary stream (read once, front to back, never seeked)."""
    inv = LayerInventory()
    try:
        inv.compression, tar_bytes = decompressing(stream)
        tar = tarfile.open(fileobj=tar_bytes, mode="r|", bufsize=TAR_BUFSIZE)  # noqa: SIM115 (with below)
    except (tarfile.TarError, OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        inv.errors.append(f"not a readable layer: {type(exc).__name__}: {exc}"[:500])
        return inv
    with tar:
        try:
            _walk(tar, inv, selector or _default_selector(), go_binaries)
        except (tarfile.TarError, OSError, EOFError, zlib.error, zstandard.ZstdError, ValueError) as exc:
            inv.errors.append(
                f"layer unreadable after {inv.entries} entries: {type(exc).__name__}: {exc}"[:500]
            )
    return inv


def _walk(tar: tarfile.TarFile, inv: LayerInventory, selector: Selector, go_binaries: bool) -> None:
    while (info := tar.next()) is not None:
        tar.members.clear()  # type: ignore[attr-defined]  # stream mode keeps every header otherwise
        inv.entries += 1
        path = normalize_path(info.name)
        if path is None:
            if len(inv.errors) < MAX_ERRORS:
                inv.errors.append(f"entry with '..' ignored: {info.name[:200]}")
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
        cataloger = selector.select(path)
        if cataloger is not None:
            if info.isreg():
                if info.size > cataloger.max_size:
                    reason = f"larger than the {cataloger.max_size}-byte cap"
                    inv.files[path] = FileFacts(cataloger.name, skipped=reason)
                    continue
                reader = tar.extractfile(info)
                if reader is not None:
                    inv.files[path] = _parse(cataloger, path, reader.read())
            elif info.issym() or info.islnk():
                reason = f"link to {info.linkname[:200]} not followed"
                inv.files[path] = FileFacts(cataloger.name, skipped=reason)
            continue
        if go_binaries and info.isreg() and info.mode & 0o111 and info.size >= gobinary.MIN_SIZE:
            reader = tar.extractfile(info)
            if reader is not None:
                facts = _go_binary(reader, info.size)
                if facts is not None:
                    inv.files[path] = facts
