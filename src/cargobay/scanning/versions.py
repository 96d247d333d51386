"""Version ordering per ecosystem: Debian/Ubuntu (dpkg), Alpine (apk), RPM, PyPI (PEP 440), npm and
crates.io (SemVer), Go (SemVer with ``v``), Maven.

``packaging`` is used for PyPI only: it accepts foreign versions with a wrong meaning
(``2.36-9+deb12u3`` would become a post-release). An ecosystem without a comparator gets none, and
its packages are never matched: a guessed ordering would report wrong findings.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any, Protocol

from packaging.version import InvalidVersion as PepInvalidVersion
from packaging.version import Version as PepVersion
from univers import debian
from univers.versions import (
    AlpineLinuxVersion,
    DebianVersion,
    InvalidVersion,
    MavenVersion,
    RpmVersion,
    SemverVersion,
)

DPKG = "dpkg"
APK = "apk"
RPM = "rpm"
PEP440 = "pep440"
SEMVER = "semver"
GO = "go"
MAVEN = "maven"


class Comparable(Protocol):
    def __lt__(self, other: Any, /) -> bool: ...
    def __le__(self, other: Any, /) -> bool: ...


_RPM_ECOSYSTEMS = ("Red Hat", "Rocky Linux", "AlmaLinux", "SUSE", "openSUSE", "Mageia", "openEuler")


def scheme_of(ecosystem: str) -> str | None:
    """The ordering an OSV ecosystem uses (``Debian:12`` → dpkg), or None when we have none."""
    base = ecosystem.split(":", 1)[0]
    if base in ("Debian", "Ubuntu"):
        return DPKG
    if base in ("Alpine", "Wolfi", "Chainguard"):
        return APK
    if base in _RPM_ECOSYSTEMS:
        return RPM
    if ecosystem == "PyPI":
        return PEP440
    if ecosystem in ("npm", "crates.io"):
        return SEMVER
    if ecosystem == "Go":
        return GO
    if ecosystem == "Maven":
        return MAVEN
    return None


class DpkgVersion:
    """A Debian version as univers parses it, ordered by a key computed once per version: dpkg's order
    (univers' ``compare_strings``) as a flat tuple, so a comparison is a tuple compare instead of
    univers' character loop (~15 µs; a scan compares thousands of times). Equality stays univers'
    (same epoch, upstream and revision strings)."""

    __slots__ = ("_fields", "_key")

    def __init__(self, parsed: DebianVersion) -> None:
        value = parsed.value
        self._fields: tuple[int, str, str] = (value.epoch, value.upstream, value.revision)
        self._key = (value.epoch, _dpkg_key(value.upstream), _dpkg_key(value.revision))

    def __lt__(self, other: DpkgVersion) -> bool:
        return self._key < other._key

    def __le__(self, other: DpkgVersion) -> bool:
        return self._key <= other._key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DpkgVersion) and self._fields == other._fields

    def __hash__(self) -> int:
        return hash(self._fields)

    def __repr__(self) -> str:
        return f"DpkgVersion{self._fields!r}"


_DPKG_ORDER: dict[str, int] = debian.characters_order  # "~" 0, end of text 1, letters, then "+-."
_DPKG_END = _DPKG_ORDER[""]


def _dpkg_key(text: str) -> tuple[int, ...]:
    """Runs of non-digits (each character's rank, then the end rank) and digits (their value), as
    univers compares them; a text that ends compares as endless (empty run, 0) pairs, so trailing
    ones are dropped and one and a half are appended (they decide within three places)."""
    pairs: list[tuple[list[int], int]] = []
    i, n = 0, len(text)
    while i < n:
        start = i
        while i < n and not text[i].isdigit():
            i += 1
        ranks = [_DPKG_ORDER[c] for c in text[start:i]]
        start = i
        while i < n and text[i].isdigit():
            i += 1
        pairs.append((ranks, int(text[start:i]) if i > start else 0))
    while pairs and pairs[-1] == ([], 0):
        pairs.pop()
    key: list[int] = []
    for ranks, number in pairs:
        key += ranks
        key += (_DPKG_END, number)
    key += (_DPKG_END, 0, _DPKG_END)
    return tuple(key)


def _semver(version: str) -> Comparable:
    if not version or not version[0].isdigit():
        raise InvalidVersion(version)
    return SemverVersion(version)


@lru_cache(maxsize=1 << 16)
def parse(scheme: str, version: str) -> Comparable | None:
    """A comparable key for ``version`` under ``scheme``, or None when it is not a valid version there."""
    try:
        if scheme == DPKG:
            return DpkgVersion(DebianVersion(version))
        if scheme == APK:
            return AlpineLinuxVersion(version)
        if scheme == RPM:
            return RpmVersion(version)
        if scheme == PEP440:
            return PepVersion(version)
        if scheme == SEMVER:
            return _semver(version)
        if scheme == GO:
            return _semver(version[1:] if version.startswith("v") else version)
        if scheme == MAVEN:
            if not version:
                return None
            return MavenVersion(version)
    except (InvalidVersion, PepInvalidVersion, ValueError, TypeError, IndexError, AttributeError, KeyError):
        return None
    return None


def compare(scheme: str, a: str, b: str) -> int | None:
    """-1, 0 or 1 as ``a`` sorts before, with or after ``b``; None if either is not a valid version."""
    ka, kb = parse(scheme, a), parse(scheme, b)
    if ka is None or kb is None:
        return None
    if ka < kb:
        return -1
    return 0 if ka <= kb else 1
