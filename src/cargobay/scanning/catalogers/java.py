"""Java archives (``.jar``, ``.war``, ``.ear``): ``META-INF/maven/<group>/<artifact>/pom.properties``
entries, in the archive and in archives nested inside it (fat jars, ``WEB-INF/lib``).

Only pom.properties is trusted: offline there is no Maven Central digest look-up, and guessing
coordinates from file names would invent packages.
"""

from __future__ import annotations

import io
import zipfile
import zlib

from cargobay.scanning.catalogers import Cataloger, MiB
from cargobay.scanning.facts import MAVEN, FileFacts, FormatError, Package

NAME = "java"
EXTENSIONS = frozenset({"jar", "war", "ear"})
MAX_DEPTH = 3
MAX_NESTED_SIZE = 64 * MiB
MAX_PROPERTIES_SIZE = 64 * 1024


def wants(path: str) -> bool:
    return path.rpartition(".")[2] in EXTENSIONS


def parse_properties(text: str) -> dict[str, str]:
    """The ``key=value`` lines of a .properties file (enough for pom.properties, which has no escapes)."""
    out: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#!":
            continue
        sep = min((i for i in (line.find("="), line.find(":")) if i >= 0), default=-1)
        if sep > 0:
            out[line[:sep].strip()] = line[sep + 1 :].strip()
    return out


def _is_pom_properties(name: str) -> bool:
    return name.startswith("META-INF/maven/") and name.endswith("/pom.properties")


def _walk(data: bytes, location: str, depth: int, packages: list[Package], notes: list[str]) -> None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise FormatError(f"not a zip archive: {exc}") from exc
    with archive:
        for info in archive.infolist():
            name = info.filename
            try:
                if _is_pom_properties(name) and info.file_size <= MAX_PROPERTIES_SIZE:
                    props = parse_properties(archive.read(info).decode("utf-8", "replace"))
                    group, artifact = props.get("groupId", ""), props.get("artifactId", "")
                    version = props.get("version", "")
                    if group and artifact and version:
                        where = f"{location}!{name}" if location else name
                        packages.append(Package(MAVEN, f"{group}:{artifact}", version, location=where))
                elif wants(name) and depth < MAX_DEPTH and not info.is_dir():
                    inner = f"{location}!{name}" if location else name
                    if info.file_size > MAX_NESTED_SIZE:
                        notes.append(f"{inner}: nested archive larger than {MAX_NESTED_SIZE} bytes")
                        continue
                    try:
                        _walk(archive.read(info), inner, depth + 1, packages, notes)
                    except FormatError as exc:
                        notes.append(f"{inner}: {exc}")
            except (
                zipfile.BadZipFile,
                OSError,
                ValueError,
                EOFError,
                zlib.error,
                NotImplementedError,
            ) as exc:
                notes.append(f"{name}: unreadable entry: {exc}")


def parse(path: str, data: bytes) -> FileFacts:
    packages: list[Package] = []
    notes: list[str] = []
    try:
        _walk(data, "", 0, packages, notes)
    except FormatError as exc:
        return FileFacts(NAME, skipped=str(exc))
    unique = tuple(dict.fromkeys(packages))
    return FileFacts(NAME, packages=unique, notes=tuple(notes[:20]))


CATALOGER = Cataloger(NAME, wants, parse, max_size=128 * MiB, extensions=EXTENSIONS)
