"""Installed Python distributions: ``*.dist-info/METADATA``, ``*.egg-info/PKG-INFO``, ``EGG-INFO/PKG-INFO``
and ``*.egg-info`` files (core metadata headers ``Name`` and ``Version``)."""

from __future__ import annotations

import re

from cargobay.scanning.catalogers import Cataloger, MiB
from cargobay.scanning.facts import PYPI, FileFacts, Package

NAME = "python"
_HEADER = re.compile(r"^(Name|Version):[ \t]*(.*?)[ \t]*$", re.M | re.I)


def wants(path: str) -> bool:
    parent, _, base = path.rpartition("/")
    if base == "METADATA":
        return parent.endswith(".dist-info")
    if base == "PKG-INFO":
        return parent.endswith(".egg-info") or parent.endswith("/EGG-INFO") or parent == "EGG-INFO"
    return base.endswith(".egg-info")


def parse_metadata(text: str) -> tuple[str, str]:
    """Name and Version from the header block (stops at the first blank line, where the body starts)."""
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    found: dict[str, str] = {}
    for key, value in _HEADER.findall(head):
        found.setdefault(key.lower(), value)
    return found.get("name", ""), found.get("version", "")


def parse(path: str, data: bytes) -> FileFacts:
    name, version = parse_metadata(data.decode("utf-8", "replace"))
    if not name or not version:
        return FileFacts(NAME, skipped="metadata without Name or Version")
    return FileFacts(NAME, packages=(Package(PYPI, name, version),))


CATALOGER = Cataloger(
    NAME,
    wants,
    parse,
    max_size=4 * MiB,
    basenames=frozenset({"METADATA", "PKG-INFO"}),
    extensions=frozenset({"egg-info"}),
)
