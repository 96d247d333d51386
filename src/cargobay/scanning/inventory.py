"""Layer and image inventories, and the bottom-up merge of one into the other.

A ``LayerInventory`` holds what one layer says on its own (facts keyed by the file that produced
them, plus its whiteouts and opaque directories), so it is cached by layer digest. ``merge`` replays
layer inventories in manifest order as the OCI image spec applies layers: a whiteout deletes a path
and its subtree from the layers below, an opaque directory deletes the lower layers' children, and
the top-most copy of a file wins (so the top-most package database is the authoritative one). Each
package records the layer that introduced it: the lowest layer from which its file kept listing it.

Both inventories are plain JSON values; ``from_json`` refuses another format version, so a cache
written by an older release is re-read from the layer instead of misread.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cargobay.scanning.catalogers import osrelease
from cargobay.scanning.facts import APK, DEB, GOLANG, MAVEN, NPM, PYPI, RPM, FileFacts, Package, Release
from cargobay.scanning.purls import package_purl

LAYER_FORMAT = "cargobay.layer-inventory/1"
IMAGE_FORMAT = "cargobay.image-inventory/1"

_LANGUAGE_ECOSYSTEMS = {PYPI: "PyPI", NPM: "npm", GOLANG: "Go", MAVEN: "Maven"}
_OS_FAMILY = {
    "debian": DEB,
    "ubuntu": DEB,
    "alpine": APK,
    "wolfi": APK,
    "chainguard": APK,
    "rhel": RPM,
    "rocky": RPM,
    "almalinux": RPM,
}


_BY_SOURCE = frozenset({DEB, APK})


class InventoryFormatError(ValueError):
    """A stored inventory is not in the format this code writes (re-read the layer or re-merge)."""


@dataclass(slots=True)
class LayerInventory:
    """What one layer contributes; built by ``layers.read_layer``."""

    files: dict[str, FileFacts] = field(default_factory=dict)
    whiteouts: list[str] = field(default_factory=list)
    opaque_dirs: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    compression: str = ""
    entries: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "format": LAYER_FORMAT,
            "compression": self.compression,
            "entries": self.entries,
            "files": {path: facts.to_json() for path, facts in self.files.items()},
            "whiteouts": list(self.whiteouts),
            "opaque_dirs": list(self.opaque_dirs),
            "errors": list(self.errors),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LayerInventory:
        if not isinstance(data, dict) or data.get("format") != LAYER_FORMAT:
            raise InventoryFormatError("not a layer inventory of format " + LAYER_FORMAT)
        try:
            return cls._from_json(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InventoryFormatError(f"malformed layer inventory: {exc!r}") from exc

    @classmethod
    def _from_json(cls, data: dict[str, Any]) -> LayerInventory:
        return cls(
            files={str(p): FileFacts.from_json(f) for p, f in data["files"].items()},
            whiteouts=[str(w) for w in data.get("whiteouts", ())],
            opaque_dirs=[str(o) for o in data.get("opaque_dirs", ())],
            errors=[str(e) for e in data.get("errors", ())],
            compression=str(data.get("compression", "")),
            entries=int(data.get("entries", 0)),
        )


@dataclass(frozen=True, slots=True)
class OsInfo:
    """The image's OS; ``ecosystem`` is the OSV ecosystem of its packages ("" when we cannot tell)."""

    id: str
    version_id: str
    pretty_name: str
    ecosystem: str

    def to_json(self) -> dict[str, str]:
        return {
            "id": self.id,
            "version_id": self.version_id,
            "pretty_name": self.pretty_name,
            "ecosystem": self.ecosystem,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> OsInfo:
        return cls(str(data["id"]), str(data["version_id"]), str(data["pretty_name"]), str(data["ecosystem"]))


@dataclass(frozen=True, slots=True)
class ImagePackage:
    """A package of the merged image. dpkg and apk packages are matched on ``source_name`` /
    ``source_version`` (Debian, Ubuntu and Alpine advisories name source packages); rpm packages on
    their own name and ``[epoch:]version-release`` (AlmaLinux, Rocky and Red Hat records list binary rpms).

    ``ecosystem`` is the OSV ecosystem ("" when unknown: such a package is listed but never matched).
    """

    ecosystem: str
    kind: str
    name: str
    version: str
    source_name: str
    source_version: str
    arch: str
    purl: str
    layer: int
    path: str
    location: str = ""

    @property
    def match_name(self) -> str:
        return (self.source_name or self.name) if self.kind in _BY_SOURCE else self.name

    @property
    def match_version(self) -> str:
        return (self.source_version or self.version) if self.kind in _BY_SOURCE else self.version

    def to_json(self) -> dict[str, Any]:
        return {
            "ecosystem": self.ecosystem,
            "kind": self.kind,
            "name": self.name,
            "version": self.version,
            "source_name": self.source_name,
            "source_version": self.source_version,
            "arch": self.arch,
            "purl": self.purl,
            "layer": self.layer,
            "path": self.path,
            "location": self.location,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImagePackage:
        return cls(
            ecosystem=str(data["ecosystem"]),
            kind=str(data["kind"]),
            name=str(data["name"]),
            version=str(data["version"]),
            source_name=str(data.get("source_name", "")),
            source_version=str(data.get("source_version", "")),
            arch=str(data.get("arch", "")),
            purl=str(data.get("purl", "")),
            layer=int(data["layer"]),
            path=str(data["path"]),
            location=str(data.get("location", "")),
        )


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """A wanted file that gave nothing, or a layer-level problem (``path`` empty)."""

    layer: int
    path: str
    reason: str

    def to_json(self) -> dict[str, Any]:
        return {"layer": self.layer, "path": self.path, "reason": self.reason}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SkippedFile:
        return cls(int(data["layer"]), str(data["path"]), str(data["reason"]))


@dataclass(frozen=True, slots=True)
class ImageInventory:
    os: OsInfo | None
    packages: tuple[ImagePackage, ...]
    skipped: tuple[SkippedFile, ...] = ()
    layers: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "format": IMAGE_FORMAT,
            "os": self.os.to_json() if self.os is not None else None,
            "layers": self.layers,
            "packages": [p.to_json() for p in self.packages],
            "skipped": [s.to_json() for s in self.skipped],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ImageInventory:
        if not isinstance(data, dict) or data.get("format") != IMAGE_FORMAT:
            raise InventoryFormatError("not an image inventory of format " + IMAGE_FORMAT)
        try:
            return cls._from_json(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InventoryFormatError(f"malformed image inventory: {exc!r}") from exc

    @classmethod
    def _from_json(cls, data: dict[str, Any]) -> ImageInventory:
        os_data = data.get("os")
        return cls(
            os=OsInfo.from_json(os_data) if os_data is not None else None,
            packages=tuple(ImagePackage.from_json(p) for p in data["packages"]),
            skipped=tuple(SkippedFile.from_json(s) for s in data.get("skipped", ())),
            layers=int(data.get("layers", 0)),
        )


def _major_minor(version: str) -> tuple[str, str]:
    parts = version.split(".")
    major = parts[0] if parts and parts[0].isdigit() else ""
    minor = parts[1] if len(parts) > 1 and parts[1].isdigit() else ""
    return major, minor


def os_ecosystem(release: Release) -> str:
    """OSV ecosystem of an OS release (``Debian:12``, ``Ubuntu:22.04:LTS``, ``Alpine:v3.19``), or ""."""
    major, minor = _major_minor(release.version_id)
    if release.id == "debian":
        return f"Debian:{major}" if major else ""
    if release.id == "ubuntu":
        if not (major and minor):
            return ""
        lts = ":LTS" if "LTS" in release.version else ""
        return f"Ubuntu:{major}.{minor}{lts}"
    if release.id == "alpine":
        return f"Alpine:v{major}.{minor}" if major and minor else ""
    if release.id == "wolfi":
        return "Wolfi"
    if release.id == "chainguard":
        return "Chainguard"
    if release.id == "rocky":
        return f"Rocky Linux:{major}" if major else ""
    if release.id == "almalinux":
        return f"AlmaLinux:{major}" if major else ""
    if release.id == "rhel":
        return "Red Hat"
    return ""


def image_release(files: dict[str, FileFacts]) -> Release | None:
    """The OS of the merged file set: os-release (etc/ before usr/lib/), completed by the version files."""
    release: Release | None = None
    for path in (osrelease.OS_RELEASE, osrelease.LIB_OS_RELEASE):
        facts = files.get(path)
        if facts is not None and facts.release is not None:
            release = facts.release
            break
    for path, os_id in ((osrelease.DEBIAN_VERSION, "debian"), (osrelease.ALPINE_RELEASE, "alpine")):
        facts = files.get(path)
        if facts is None or facts.release is None:
            continue
        version = facts.release.version
        if release is None:
            version_id = version if os_id == "alpine" else version.split(".")[0]
            release = Release(id=os_id, version_id=version_id if version_id[:1].isdigit() else "")
        elif release.id == os_id and not release.version_id and version[:1].isdigit():
            version_id = version if os_id == "alpine" else version.split(".")[0]
            release = Release(release.id, version_id, release.version, release.codename, release.pretty_name)
    return release


@dataclass(slots=True)
class _Entry:
    layer: int
    facts: FileFacts
    origins: dict[Package, int]


def _delete(state: dict[str, _Entry], whiteouts: Sequence[str], opaque_dirs: Sequence[str]) -> None:
    gone = set(whiteouts)
    opaque = set(opaque_dirs)
    if "" in opaque:
        state.clear()
        return
    for path in list(state):
        if path in gone:
            del state[path]
            continue
        parent = path
        while "/" in parent:
            parent = parent.rpartition("/")[0]
            if parent in gone or parent in opaque:
                del state[path]
                break


def merge(layers: Sequence[LayerInventory]) -> ImageInventory:
    """Replay layer inventories bottom-up (index 0 = the base layer) into the image inventory."""
    state: dict[str, _Entry] = {}
    skipped: list[SkippedFile] = []
    for index, layer in enumerate(layers):
        if layer.whiteouts or layer.opaque_dirs:
            _delete(state, layer.whiteouts, layer.opaque_dirs)
        for error in layer.errors:
            skipped.append(SkippedFile(index, "", error))
        for path, facts in layer.files.items():
            previous = state.get(path)
            before = previous.origins if previous is not None else {}
            origins = {p: before.get(p, index) for p in facts.packages}
            state[path] = _Entry(index, facts, origins)

    release = image_release({p: e.facts for p, e in state.items()})
    os_info: OsInfo | None = None
    if release is not None:
        os_info = OsInfo(release.id, release.version_id, release.pretty_name, os_ecosystem(release))
    family = _OS_FAMILY.get(os_info.id, "") if os_info is not None else ""
    os_id = os_info.id if os_info is not None else ""
    os_version = os_info.version_id if os_info is not None else ""

    packages: list[ImagePackage] = []
    for path in sorted(state):
        entry = state[path]
        if entry.facts.skipped:
            skipped.append(SkippedFile(entry.layer, path, f"{entry.facts.cataloger}: {entry.facts.skipped}"))
        for pkg, origin in entry.origins.items():
            if pkg.kind in _LANGUAGE_ECOSYSTEMS:
                ecosystem = _LANGUAGE_ECOSYSTEMS[pkg.kind]
            elif os_info is not None and pkg.kind == family:
                ecosystem = os_info.ecosystem
            else:
                ecosystem = ""
            packages.append(
                ImagePackage(
                    ecosystem=ecosystem,
                    kind=pkg.kind,
                    name=pkg.name,
                    version=pkg.version,
                    source_name=pkg.source_name,
                    source_version=pkg.source_version,
                    arch=pkg.arch,
                    purl=package_purl(pkg, os_id, os_version),
                    layer=origin,
                    path=path,
                    location=pkg.location,
                )
            )
    return ImageInventory(os=os_info, packages=tuple(packages), skipped=tuple(skipped), layers=len(layers))
