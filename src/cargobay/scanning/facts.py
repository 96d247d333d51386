"""What a cataloger learns from one file: packages, OS release details, or why it learnt nothing.

These values are cached per layer digest as JSON, so they hold only what one file says on its own;
everything that needs the whole image (the OSV ecosystem of an OS package, purls) is derived later.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

# Package kinds are purl types: the cataloger that found a package decides its kind.
DEB = "deb"
APK = "apk"
RPM = "rpm"
PYPI = "pypi"
NPM = "npm"
GOLANG = "golang"
MAVEN = "maven"
OS_KINDS = frozenset({DEB, APK, RPM})


class FormatError(ValueError):
    """A file a cataloger wanted is not in the format it expected (the file is skipped, not the scan)."""


@dataclass(frozen=True, slots=True)
class Package:
    """One installed package as its file describes it.

    For OS packages ``source_name``/``source_version`` name the source package the advisories are
    about (dpkg ``Source:``, apk origin, rpm ``SOURCERPM``); empty means "same as the binary".
    ``location`` is the path inside an archive (nested jars), empty for plain files.
    """

    kind: str
    name: str
    version: str
    source_name: str = ""
    source_version: str = ""
    arch: str = ""
    location: str = ""

    def to_json(self) -> dict[str, str]:
        return {name: v for name in _PACKAGE_FIELDS if (v := getattr(self, name))}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Package:
        return cls(**{name: str(data.get(name, "")) for name in _PACKAGE_FIELDS})


@dataclass(frozen=True, slots=True)
class Release:
    """OS identification from one release file (os-release fields, or a bare version file)."""

    id: str = ""
    version_id: str = ""
    version: str = ""
    codename: str = ""
    pretty_name: str = ""

    def to_json(self) -> dict[str, str]:
        return {name: v for name in _RELEASE_FIELDS if (v := getattr(self, name))}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Release:
        return cls(**{name: str(data.get(name, "")) for name in _RELEASE_FIELDS})


_PACKAGE_FIELDS = tuple(f.name for f in fields(Package))
_RELEASE_FIELDS = tuple(f.name for f in fields(Release))


@dataclass(frozen=True, slots=True)
class FileFacts:
    """What one file of one layer contributed; ``skipped`` says why a wanted file gave nothing."""

    cataloger: str
    packages: tuple[Package, ...] = ()
    release: Release | None = None
    skipped: str = ""
    notes: tuple[str, ...] = field(default=())

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"cataloger": self.cataloger}
        if self.packages:
            out["packages"] = [p.to_json() for p in self.packages]
        if self.release is not None:
            out["release"] = self.release.to_json()
        if self.skipped:
            out["skipped"] = self.skipped
        if self.notes:
            out["notes"] = list(self.notes)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileFacts:
        release = data.get("release")
        return cls(
            cataloger=str(data["cataloger"]),
            packages=tuple(Package.from_json(p) for p in data.get("packages", ())),
            release=Release.from_json(release) if release is not None else None,
            skipped=str(data.get("skipped", "")),
            notes=tuple(str(n) for n in data.get("notes", ())),
        )
