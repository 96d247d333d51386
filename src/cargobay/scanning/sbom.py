"""The image inventory as a CycloneDX 1.6 JSON SBOM (``cyclonedx-python-lib``).

The image is the metadata component; the OS is an ``operating-system`` component, every package a
``library`` with its purl, and cargobay properties say where it was found (layer, path) and, for OS
packages, which source package it was built from. Components are deduplicated by purl.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from cyclonedx.model import Property
from cyclonedx.model.bom import Bom, BomMetaData
from cyclonedx.model.component import Component, ComponentType
from cyclonedx.model.dependency import Dependable, Dependency
from cyclonedx.output.json import JsonV1Dot6
from packageurl import PackageURL

from cargobay.scanning.inventory import ImageInventory, ImagePackage

_PROPERTY = "cargobay:"


def _component(pkg: ImagePackage, ref: str) -> Component:
    properties = [
        Property(name=_PROPERTY + "layer", value=str(pkg.layer)),
        Property(name=_PROPERTY + "path", value=pkg.path),
    ]
    if pkg.location:
        properties.append(Property(name=_PROPERTY + "location", value=pkg.location))
    if pkg.ecosystem:
        properties.append(Property(name=_PROPERTY + "ecosystem", value=pkg.ecosystem))
    if pkg.source_name:
        properties.append(Property(name=_PROPERTY + "source_name", value=pkg.source_name))
    if pkg.source_version:
        properties.append(Property(name=_PROPERTY + "source_version", value=pkg.source_version))
    purl = PackageURL.from_string(pkg.purl) if pkg.purl else None
    group = None
    name = pkg.name
    if pkg.kind == "maven" and ":" in name:
        group, _, name = name.rpartition(":")
    return Component(
        name=name,
        group=group,
        version=pkg.version,
        type=ComponentType.LIBRARY,
        purl=purl,
        bom_ref=ref,
        properties=properties,
    )


def cyclonedx_bom(
    inventory: ImageInventory,
    *,
    name: str,
    version: str = "",
    serial: uuid.UUID | None = None,
    timestamp: datetime | None = None,
) -> Bom:
    """A CycloneDX BOM of the image ``name`` (e.g. ``registry/repo``) at ``version`` (e.g. the digest)."""
    image = Component(name=name, version=version or None, type=ComponentType.CONTAINER, bom_ref="image")
    metadata = BomMetaData(component=image)
    if timestamp is not None:
        metadata.timestamp = timestamp
    components: list[Component] = []
    if inventory.os is not None:
        components.append(
            Component(
                name=inventory.os.id,
                version=inventory.os.version_id or None,
                type=ComponentType.OPERATING_SYSTEM,
                description=inventory.os.pretty_name or None,
                bom_ref="os",
            )
        )
    seen: set[str] = set()
    for index, pkg in enumerate(inventory.packages):
        ref = pkg.purl or f"{pkg.kind}:{pkg.name}@{pkg.version}#{index}"
        if ref in seen:
            continue
        seen.add(ref)
        components.append(_component(pkg, ref))
    bom = Bom(components=components, metadata=metadata, serial_number=serial or uuid.uuid4())
    _index_dependencies(bom)
    bom.register_dependency(image, components)
    return bom


def _index_dependencies(bom: Bom) -> None:
    """Make ``register_dependency`` a dictionary look-up: the library's own one scans every
    dependency per call, which made a 700-package SBOM take seconds (quadratic)."""
    known: dict[str, Dependency] = {str(d.ref): d for d in bom.dependencies}

    def register(target: Dependable, depends_on: Iterable[Dependable] | None = None) -> None:
        key = str(target.bom_ref)
        entry = known.get(key)
        if entry is None:
            entry = known[key] = Dependency(ref=target.bom_ref)
            bom.dependencies.add(entry)
        if depends_on:
            others = list(depends_on)
            entry.dependencies.update(Dependency(ref=d.bom_ref) for d in others)
            for other in others:
                register(other)

    bom.register_dependency = register  # type: ignore[method-assign]


def cyclonedx_json(
    inventory: ImageInventory, *, name: str, version: str = "", serial: uuid.UUID | None = None
) -> str:
    return str(
        JsonV1Dot6(cyclonedx_bom(inventory, name=name, version=version, serial=serial)).output_as_string()
    )
