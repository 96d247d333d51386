"""OS identification: ``etc/os-release``, ``usr/lib/os-release``, ``etc/debian_version``,
``etc/alpine-release``."""

from __future__ import annotations

import re

from cargobay.scanning.catalogers import Cataloger
from cargobay.scanning.facts import FileFacts, Release

NAME = "os-release"
OS_RELEASE = "etc/os-release"
LIB_OS_RELEASE = "usr/lib/os-release"
DEBIAN_VERSION = "etc/debian_version"
ALPINE_RELEASE = "etc/alpine-release"
PATHS = (OS_RELEASE, LIB_OS_RELEASE, DEBIAN_VERSION, ALPINE_RELEASE)

_LINE = re.compile(r"^([A-Z0-9_]+)=(.*)$", re.M)
_ESCAPE = re.compile(r"\\(.)")


def wants(path: str) -> bool:
    return path in PATHS


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        inner = value[1:-1]
        return _ESCAPE.sub(r"\1", inner) if value[0] == '"' else inner
    return value


def parse_os_release(text: str) -> Release:
    """os-release(5): shell-style ``KEY=value`` lines; unknown keys and junk lines are ignored."""
    values = {m.group(1): _unquote(m.group(2)) for m in _LINE.finditer(text)}
    return Release(
        id=values.get("ID", "").lower(),
        version_id=values.get("VERSION_ID", ""),
        version=values.get("VERSION", ""),
        codename=values.get("VERSION_CODENAME", ""),
        pretty_name=values.get("PRETTY_NAME", ""),
    )


def parse(path: str, data: bytes) -> FileFacts:
    text = data.decode("utf-8", "replace")
    if path in (OS_RELEASE, LIB_OS_RELEASE):
        release = parse_os_release(text)
        if not release.id:
            return FileFacts(NAME, skipped="no ID in os-release")
        return FileFacts(NAME, release=release)
    first = text.strip().split("\n", 1)[0].strip()
    if not first or len(first) > 64:
        return FileFacts(NAME, skipped="empty or implausible version file")
    os_id = "debian" if path == DEBIAN_VERSION else "alpine"
    return FileFacts(NAME, release=Release(id=os_id, version=first))


CATALOGER = Cataloger(
    NAME,
    wants,
    parse,
    max_size=64 * 1024,
    basenames=frozenset(p.rpartition("/")[2] for p in PATHS),
)
