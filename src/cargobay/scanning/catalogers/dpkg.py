"""dpkg databases: ``var/lib/dpkg/status`` and distroless ``var/lib/dpkg/status.d/*`` (deb822 stanzas).

A stanza without ``Status:`` counts as installed (distroless writes none); ``not-installed``,
``config-files`` and ``half-installed`` packages have no files on disk and are dropped.
``Source: name (version)`` gives the source package the Debian advisories are written against.
"""

from __future__ import annotations

import re

from cargobay.scanning.catalogers import Cataloger, MiB
from cargobay.scanning.facts import DEB, FileFacts, Package

NAME = "dpkg"
STATUS = "var/lib/dpkg/status"
STATUS_D = "var/lib/dpkg/status.d"

_STANZA_SPLIT = re.compile(r"\n[ \t]*\n")
_FIELD = re.compile(r"^(Package|Status|Version|Source|Architecture):[ \t]*(.*?)[ \t]*$", re.M | re.I)
_SOURCE = re.compile(r"^(\S+)(?:\s+\((\S+)\))?$")
_GONE = frozenset({"not-installed", "config-files", "half-installed"})


def wants(path: str) -> bool:
    if path == STATUS:
        return True
    parent, _, base = path.rpartition("/")
    return parent == STATUS_D and not base.endswith(".md5sums") and not base.startswith(".")


def parse_status(text: str) -> tuple[list[Package], list[str]]:
    """Packages of a deb822 status file, and notes on stanzas that were left out as malformed."""
    packages: list[Package] = []
    notes: list[str] = []
    for stanza in _STANZA_SPLIT.split(text.replace("\r\n", "\n")):
        found = {k.lower(): v for k, v in _FIELD.findall(stanza)}
        name = found.get("package", "")
        if not name:
            if stanza.strip():
                notes.append("stanza without Package field")
            continue
        state = found.get("status", "").split()[-1:]
        if state and state[0] in _GONE:
            continue
        version = found.get("version", "")
        if not version:
            notes.append(f"{name}: no Version field")
            continue
        source_name, source_version = name, version
        source = found.get("source")
        if source:
            m = _SOURCE.match(source)
            if m is None:
                notes.append(f"{name}: malformed Source field")
            else:
                source_name = m.group(1)
                source_version = m.group(2) or version
        packages.append(
            Package(
                DEB,
                name,
                version,
                source_name=source_name if source_name != name else "",
                source_version=source_version if source_version != version else "",
                arch=found.get("architecture", ""),
            )
        )
    return packages, notes


def parse(path: str, data: bytes) -> FileFacts:
    packages, notes = parse_status(data.decode("utf-8", "replace"))
    return FileFacts(NAME, packages=tuple(packages), notes=tuple(notes[:20]))


CATALOGER = Cataloger(
    NAME, wants, parse, max_size=64 * MiB, basenames=frozenset({"status"}), parents=frozenset({STATUS_D})
)
