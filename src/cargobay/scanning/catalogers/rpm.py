"""RPM databases in SQLite form (``rpmdb.sqlite``): each ``Packages`` row is an RPM header blob.

The header parser reads only the index and the tags we need (NAME, EPOCH, VERSION, RELEASE, ARCH,
SOURCERPM); every offset is bounds-checked, so a corrupt blob skips that package, not the scan.
Berkeley DB (``Packages``) and NDB (``Packages.db``) databases are not read.
"""

from __future__ import annotations

import re
import sqlite3
import struct
from dataclasses import dataclass

from cargobay.scanning.catalogers import Cataloger, MiB
from cargobay.scanning.facts import RPM, FileFacts, FormatError, Package

NAME = "rpm"
PATHS = ("var/lib/rpm/rpmdb.sqlite", "usr/lib/sysimage/rpm/rpmdb.sqlite")

TAG_NAME = 1000
TAG_VERSION = 1001
TAG_RELEASE = 1002
TAG_EPOCH = 1003
TAG_ARCH = 1022
TAG_SOURCERPM = 1044
_WANTED = frozenset({TAG_NAME, TAG_VERSION, TAG_RELEASE, TAG_EPOCH, TAG_ARCH, TAG_SOURCERPM})
TYPE_INT32 = 4
TYPE_STRING = 6
TYPE_STRING_ARRAY = 8
TYPE_I18NSTRING = 9
HEADER_MAGIC = b"\x8e\xad\xe8\x01"
_MAX_ENTRIES = 100_000
_SOURCE_RPM = re.compile(r"^(.+)-([^-]+)-([^-]+)\.(?:no)?src\.rpm$")


@dataclass(frozen=True, slots=True)
class RpmHeader:
    name: str
    version: str
    release: str
    epoch: int | None
    arch: str
    source_rpm: str


def _string_at(store: bytes, offset: int) -> str:
    if not 0 <= offset < len(store):
        raise FormatError("string offset outside the data store")
    end = store.find(b"\0", offset)
    if end < 0:
        raise FormatError("unterminated string")
    return store[offset:end].decode("utf-8", "replace")


def parse_header(blob: bytes) -> RpmHeader:
    """Parse an RPM header blob (as stored in rpmdb, or with the 8-byte magic prefix of a package file)."""
    if blob[:4] == HEADER_MAGIC:
        blob = blob[8:]
    if len(blob) < 8:
        raise FormatError("header shorter than its preamble")
    count, size = struct.unpack_from(">II", blob, 0)
    if count > _MAX_ENTRIES:
        raise FormatError("implausible number of header entries")
    index_end = 8 + 16 * count
    if index_end + size > len(blob):
        raise FormatError("header index or data store runs past the blob")
    store = blob[index_end : index_end + size]
    values: dict[int, str | int] = {}
    for i in range(count):
        tag, kind, offset, n = struct.unpack_from(">iiii", blob, 8 + 16 * i)
        if tag not in _WANTED:
            continue
        if kind in (TYPE_STRING, TYPE_I18NSTRING, TYPE_STRING_ARRAY):
            values[tag] = _string_at(store, offset)
        elif kind == TYPE_INT32:
            if n < 1 or offset < 0 or offset + 4 > len(store):
                raise FormatError("int32 value outside the data store")
            values[tag] = struct.unpack_from(">i", store, offset)[0]
        else:
            raise FormatError(f"tag {tag} has unexpected type {kind}")
    name, version, release = (values.get(t) for t in (TAG_NAME, TAG_VERSION, TAG_RELEASE))
    if not (isinstance(name, str) and isinstance(version, str) and isinstance(release, str)):
        raise FormatError("header lacks NAME, VERSION or RELEASE")
    epoch = values.get(TAG_EPOCH)
    arch = values.get(TAG_ARCH, "")
    source = values.get(TAG_SOURCERPM, "")
    return RpmHeader(
        name=name,
        version=version,
        release=release,
        epoch=epoch if isinstance(epoch, int) else None,
        arch=str(arch),
        source_rpm=str(source),
    )


def evr(epoch: int | None, version: str, release: str) -> str:
    """``[epoch:]version-release``, the form RPM advisories use (epoch 0 is left out)."""
    return f"{epoch}:{version}-{release}" if epoch else f"{version}-{release}"


def to_package(header: RpmHeader) -> Package:
    source_name = source_version = ""
    m = _SOURCE_RPM.match(header.source_rpm)
    if m is not None:
        source_name = m.group(1)
        source_version = evr(header.epoch, m.group(2), m.group(3))
    version = evr(header.epoch, header.version, header.release)
    return Package(
        RPM,
        header.name,
        version,
        source_name=source_name if source_name != header.name else "",
        source_version=source_version if source_version != version else "",
        arch=header.arch,
    )


def wants(path: str) -> bool:
    return path in PATHS


def read_blobs(data: bytes) -> list[bytes]:
    """Header blobs of an rpmdb.sqlite image, opened in memory (a WAL-mode file is read as rollback)."""
    if not data.startswith(b"SQLite format 3\0"):
        raise FormatError("not an SQLite database")
    image = bytearray(data)
    if image[18:20] == b"\x02\x02":
        image[18:20] = b"\x01\x01"
    conn = sqlite3.connect(":memory:")
    try:
        conn.deserialize(bytes(image))
        rows = conn.execute("SELECT blob FROM Packages").fetchall()
    except sqlite3.Error as exc:
        raise FormatError(f"cannot read rpmdb: {exc}") from exc
    finally:
        conn.close()
    return [bytes(r[0]) for r in rows if isinstance(r[0], bytes | bytearray | memoryview)]


def parse(path: str, data: bytes) -> FileFacts:
    try:
        blobs = read_blobs(data)
    except FormatError as exc:
        return FileFacts(NAME, skipped=str(exc))
    packages: list[Package] = []
    notes: list[str] = []
    for blob in blobs:
        try:
            header = parse_header(blob)
        except (FormatError, struct.error) as exc:
            notes.append(f"bad header: {exc}")
            continue
        if header.name == "gpg-pubkey":
            continue
        packages.append(to_package(header))
    return FileFacts(NAME, packages=tuple(packages), notes=tuple(notes[:20]))


CATALOGER = Cataloger(NAME, wants, parse, max_size=256 * MiB, basenames=frozenset({"rpmdb.sqlite"}))
