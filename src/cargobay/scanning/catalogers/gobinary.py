"""Go executables: the module build info that ``go build`` embeds (``debug/buildinfo``).

The blob starts with ``\\xff Go buildinf:`` at a 16-byte aligned file offset (the ``.go.buildinfo``
section); since Go 1.18 the toolchain version and the module info follow inline as varint-prefixed
strings, so one forward pass over the file finds them without an ELF section table. Older
(pointer-based) blobs are reported as skipped. Packages: the main module, every ``dep`` (a ``=>``
replacement line replaces the dep before it) and ``stdlib`` at the toolchain version.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cargobay.scanning.catalogers import MiB
from cargobay.scanning.facts import GOLANG, FileFacts, FormatError, Package

NAME = "go-binary"
ELF_MAGIC = b"\x7fELF"
BUILDINFO_MAGIC = b"\xff Go buildinf:"
HEADER_SIZE = 32
FLAG_VERSION_INLINE = 0x2
MAX_SIZE = 256 * MiB
MIN_SIZE = 4096
CHUNK = 1 * MiB
MAX_INFO = 4 * MiB
STDLIB = "stdlib"


@dataclass(frozen=True, slots=True)
class BuildInfo:
    go_version: str
    modinfo: str


def _uvarint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise IndexError("varint runs past the data")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise FormatError("varint too long")


def _inline_strings(buf: bytes, start: int) -> BuildInfo:
    """Decode the two inline strings after the header; IndexError means more bytes are needed."""
    n, pos = _uvarint(buf, start)
    if n > MAX_INFO:
        raise FormatError("implausible Go version length")
    if pos + n > len(buf):
        raise IndexError("version string incomplete")
    version = buf[pos : pos + n].decode("utf-8", "replace")
    m, pos = _uvarint(buf, pos + n)
    if m > MAX_INFO:
        raise FormatError("implausible module info length")
    if pos + m > len(buf):
        raise IndexError("module info incomplete")
    mod = buf[pos : pos + m].decode("utf-8", "replace")
    # The module info is framed by 16-byte sentinels (cmd/go's modinfo framing).
    mod = mod[16:-16] if len(mod) >= 33 and mod[-17] == "\n" else ""
    return BuildInfo(version, mod)


def find_buildinfo(head: bytes, read: Callable[[int], bytes]) -> BuildInfo | None:
    """Scan a file forward (``head`` = bytes already read, ``read`` = more) for the build info blob.

    Returns None when the file has none (not a Go binary); raises FormatError for a blob we cannot read.
    """
    buf = head
    base = 0  # file offset of buf[0]
    start = 0
    while True:
        i = buf.find(BUILDINFO_MAGIC, start)
        while i >= 0 and (base + i) % 16:
            i = buf.find(BUILDINFO_MAGIC, i + 1)
        if i >= 0:
            break
        keep = len(BUILDINFO_MAGIC) - 1
        chunk = read(CHUNK)
        if not chunk:
            return None
        drop = max(len(buf) - keep, 0)
        base += drop
        buf = buf[drop:] + chunk
        start = 0
    buf = buf[i:]
    while len(buf) < HEADER_SIZE:
        more = read(CHUNK)
        if not more:
            raise FormatError("build info header truncated")
        buf += more
    flags = buf[15]
    if not flags & FLAG_VERSION_INLINE:
        raise FormatError("pre-Go 1.18 build info (pointer format) is not supported")
    while True:
        try:
            return _inline_strings(buf, HEADER_SIZE)
        except IndexError:
            more = read(CHUNK) if len(buf) < MAX_INFO else b""
            if not more:
                raise FormatError("build info truncated") from None
            buf += more


def stdlib_version(go_version: str) -> str:
    """``go1.21.5`` → ``1.21.5``, ``go1.22`` → ``1.22.0``, ``go1.22rc1`` → ``1.22.0-rc1`` (OSV's Go form)."""
    v = go_version.split(None, 1)[0] if go_version else ""
    if not v.startswith("go1"):
        return ""
    v = v[2:]
    pre = ""
    for tag in ("rc", "beta"):
        if tag in v:
            v, _, num = v.partition(tag)
            pre = f"-{tag}{num}"
            break
    parts = v.split(".")
    if not all(p.isdigit() for p in parts) or len(parts) > 3:
        return ""
    while len(parts) < 3:
        parts.append("0")
    return ".".join(parts) + pre


def parse_modinfo(modinfo: str) -> tuple[list[Package], list[str]]:
    packages: list[Package] = []
    notes: list[str] = []
    last: int | None = None
    for line in modinfo.splitlines():
        fields = line.split("\t")
        kind = fields[0]
        if kind in ("mod", "dep") and len(fields) >= 2:
            version = fields[2] if len(fields) >= 3 else ""
            packages.append(Package(GOLANG, fields[1], version))
            last = len(packages) - 1
        elif kind == "=>" and last is not None and len(fields) >= 2:
            path = fields[1]
            version = fields[2] if len(fields) >= 3 else ""
            if not version or path.startswith((".", "/")):
                notes.append(f"{packages[last].name}: replaced by local directory {path}")
                packages[last] = Package(GOLANG, packages[last].name, "(devel)")
            else:
                packages[last] = Package(GOLANG, path, version)
            last = None
        else:
            last = None
    return packages, notes


def to_facts(info: BuildInfo) -> FileFacts:
    packages, notes = parse_modinfo(info.modinfo)
    std = stdlib_version(info.go_version)
    if std:
        packages.append(Package(GOLANG, STDLIB, std))
    elif info.go_version:
        notes.append(f"unrecognised Go version {info.go_version!r}")
    return FileFacts(NAME, packages=tuple(packages), notes=tuple(notes[:20]))


def scan(head: bytes, read: Callable[[int], bytes]) -> FileFacts | None:
    """Facts of an ELF executable, or None if it is not a Go binary."""
    try:
        info = find_buildinfo(head, read)
    except FormatError as exc:
        return FileFacts(NAME, skipped=str(exc))
    return None if info is None else to_facts(info)
