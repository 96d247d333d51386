"""Alpine's apk database ``lib/apk/db/installed``: ``P:`` name, ``V:`` version, ``o:`` origin, ``A:`` arch.

Alpine advisories (secdb, OSV ``Alpine:vX.Y``) name the origin package, whose version is the binary's.
"""

from __future__ import annotations

from cargobay.scanning.catalogers import Cataloger, MiB
from cargobay.scanning.facts import APK, FileFacts, Package

NAME = "apk"
INSTALLED = "lib/apk/db/installed"


def wants(path: str) -> bool:
    return path == INSTALLED


def parse_installed(text: str) -> tuple[list[Package], list[str]]:
    packages: list[Package] = []
    notes: list[str] = []
    fields: dict[str, str] = {}

    def flush() -> None:
        name, version = fields.get("P", ""), fields.get("V", "")
        if name and version:
            origin = fields.get("o", "")
            packages.append(
                Package(
                    APK, name, version, source_name=origin if origin != name else "", arch=fields.get("A", "")
                )
            )
        elif fields:
            notes.append(f"entry without name or version: {name or '?'}")
        fields.clear()

    for line in text.splitlines():
        if not line.strip():
            flush()
        elif len(line) >= 2 and line[1] == ":" and line[0] in "PVoA":
            fields[line[0]] = line[2:].strip()
        elif len(line) >= 2 and line[1] == ":":
            fields.setdefault("_", "")
    flush()
    return packages, notes


def parse(path: str, data: bytes) -> FileFacts:
    packages, notes = parse_installed(data.decode("utf-8", "replace"))
    return FileFacts(NAME, packages=tuple(packages), notes=tuple(notes[:20]))


CATALOGER = Cataloger(NAME, wants, parse, max_size=64 * MiB, basenames=frozenset({"installed"}))
