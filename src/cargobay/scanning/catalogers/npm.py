"""npm packages installed in ``node_modules``: ``node_modules/<name>/package.json`` and
``node_modules/@scope/<name>/package.json`` (other package.json files, e.g. in a package's
sub-folders, describe no installed package)."""

from __future__ import annotations

import json

from cargobay.scanning.catalogers import Cataloger, MiB
from cargobay.scanning.facts import NPM, FileFacts, Package

NAME = "npm"


def wants(path: str) -> bool:
    parts = path.split("/")
    if len(parts) >= 3 and parts[-3] == "node_modules" and not parts[-2].startswith("@"):
        return parts[-2] not in (".bin", ".cache")
    return len(parts) >= 4 and parts[-4] == "node_modules" and parts[-3].startswith("@")


def parse(path: str, data: bytes) -> FileFacts:
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return FileFacts(NAME, skipped="package.json is not valid JSON")
    if not isinstance(doc, dict):
        return FileFacts(NAME, skipped="package.json is not an object")
    name, version = doc.get("name"), doc.get("version")
    if not isinstance(name, str) or not isinstance(version, str) or not name or not version:
        return FileFacts(NAME, skipped="package.json without name or version")
    return FileFacts(NAME, packages=(Package(NPM, name, version),))


CATALOGER = Cataloger(NAME, wants, parse, max_size=4 * MiB, basenames=frozenset({"package.json"}))
