"""OSV documents from the places users keep them: single ``.json`` files (one record or an array of
records), folders of them (searched recursively), and per-ecosystem ``all.zip`` dumps as osv.dev
exports them (``<ECOSYSTEM>/all.zip``, one ``<ID>.json`` member per record).

``find_sources`` expands the paths given (and says how many documents each holds, so an importer can
show progress before reading any); ``documents`` yields each document's raw bytes; ``records_of``
decodes one into record objects. Nothing here raises for a bad document: problems are returned with
the place they were found, so one broken file never stops an import.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

JSON = "json"
ZIP = "zip"
MAX_DOCUMENT = 64 * 1024 * 1024  # a larger member is refused unread (a zip bomb is not a record)


class SourceError(ValueError):
    """A path given to the importer is neither an OSV JSON file, a zip of them, nor a folder."""


@dataclass(frozen=True, slots=True)
class OsvSource:
    path: Path
    kind: str  # JSON or ZIP
    documents: int


def _kind(path: Path) -> str | None:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return JSON
    if suffix == ".zip":
        return ZIP
    return None


def _zip_members(path: Path) -> int:
    try:
        with zipfile.ZipFile(path) as zf:
            return sum(1 for info in zf.infolist() if _wanted_member(info))
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(f"{path}: not a readable zip file ({exc})") from None


def _wanted_member(info: zipfile.ZipInfo) -> bool:
    return not info.is_dir() and info.filename.lower().endswith(".json")


def find_sources(paths: Iterable[Path]) -> list[OsvSource]:
    """Each path as sources: a file as itself, a folder as its ``*.json`` and ``*.zip`` files (sorted)."""
    found: list[OsvSource] = []
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and _kind(p) is not None)
            found.extend(_source(p, _kind(p) or JSON) for p in files)
            continue
        if not path.exists():
            raise SourceError(f"{path}: no such file or folder")
        kind = _kind(path)
        if kind is None:
            # A file with another name may still be a zip (a download saved under any name).
            kind = ZIP if zipfile.is_zipfile(path) else JSON
        found.append(_source(path, kind))
    return found


def _source(path: Path, kind: str) -> OsvSource:
    return OsvSource(path, kind, _zip_members(path) if kind == ZIP else 1)


@dataclass(frozen=True, slots=True)
class Document:
    where: str  # file, or zip!member, for messages
    data: bytes | None  # None when it could not be read (see ``problem``)
    problem: str = ""


def documents(source: OsvSource) -> Iterator[Document]:
    """The raw documents of a source in their stored order."""
    if source.kind == JSON:
        try:
            yield Document(str(source.path), source.path.read_bytes())
        except OSError as exc:
            yield Document(str(source.path), None, f"cannot read: {exc}")
        return
    with zipfile.ZipFile(source.path) as zf:
        for info in zf.infolist():
            if not _wanted_member(info):
                continue
            where = f"{source.path}!{info.filename}"
            if info.file_size > MAX_DOCUMENT:
                yield Document(where, None, f"larger than {MAX_DOCUMENT} bytes, not read")
                continue
            try:
                yield Document(where, zf.read(info))
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                yield Document(where, None, f"cannot read: {exc}")


def records_of(document: Document) -> tuple[list[tuple[dict[str, Any], bytes]], list[str]]:
    """The record objects of a document, each with its own JSON bytes, and the problems found."""
    if document.data is None:
        return [], [f"{document.where}: {document.problem}"]
    try:
        value = json.loads(document.data)
    except (ValueError, RecursionError) as exc:
        return [], [f"{document.where}: not JSON ({str(exc)[:200]})"]
    if isinstance(value, dict):
        return [(value, document.data)], []
    if isinstance(value, list):
        records: list[tuple[dict[str, Any], bytes]] = []
        problems: list[str] = []
        for index, item in enumerate(value):
            if isinstance(item, dict):
                records.append((item, json.dumps(item, separators=(",", ":")).encode()))
            else:
                problems.append(f"{document.where}[{index}]: an OSV record is a JSON object")
        return records, problems
    return [], [f"{document.where}: an OSV document is an object or an array of objects"]
