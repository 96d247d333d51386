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


def _semver(version: str) -> Comparable:
    if not version or not version[0].isdigit():
        raise InvalidVersion(version)
    return SemverVersion(version)


@lru_cache(maxsize=1 << 16)
def parse(scheme: str, version: str) -> Comparable | None:
    """A comparable key for ``version`` under ``scheme``, or None when it is not a valid version there."""
    try:
        if scheme == DPKG:
            return DebianVersion(version)
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
    except (InvalidVersion, PepInvalidVersion, ValueError, TypeError, IndexError, AttributeError):
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
