"""The vulnerability database: importing OSV records, syncing the per-ecosystem dumps, reading records.

Import (``cargobay vulndb import``, and ``sync`` after its downloads): records are read from files,
folders and ``all.zip`` dumps, checked with ``scanning.osv.OsvRecord.parse`` and upserted by id in
batches, each its own transaction: a record replaces the stored one only when its ``modified`` is
newer; a withdrawn record keeps its row but loses its package keys and aliases, so it matches and
names nothing. The keys each batch changed are noted; the import's last transaction bumps the database
version and enqueues the rescan (one per version), so a crash mid-import loses nothing: the next
import's end gives the noted changes their version.

Sync fetches ``{CARGOBAY_VULNDB_URL}/{ecosystem}/all.zip`` with ``If-None-Match`` /
``If-Modified-Since`` from the last successful fetch; a 304 costs nothing, and a dump's validators are
saved only once it is imported.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from cargobay.db.engine import Database
from cargobay.db.queries import vulndb as store
from cargobay.db.queries.vulndb import Key, NewAdvisory, SourceState, State, StoredRecord
from cargobay.jobs.queue import enqueue
from cargobay.logs import get_logger
from cargobay.scanning import osvfiles, severity
from cargobay.scanning.matcher import vulnerability_ids
from cargobay.scanning.osv import Affected, InvalidRecord, OsvRecord, Severity, normalize_name

log = get_logger("cargobay.vulndb")

RESCAN_JOB = "vulndb.rescan"
SYNC_JOB = "vulndb.sync"
BATCH = 1000
MAX_PROBLEMS = 100
MAX_KEY = 1000  # longer names are not indexed (no package is called that)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
OSV_URL = "https://osv.dev/vulnerability/"

Progress = Callable[[int, int], None]  # (documents read, documents in all)


@lru_cache(maxsize=1 << 14)
def parse_time(text: str) -> datetime | None:
    """An OSV RFC 3339 time (``Z`` or an offset, up to nanoseconds) as UTC; None when unreadable."""
    if not text:
        return None
    value = text.strip().replace("z", "Z")
    value = re.sub(r"(\.\d{6})\d+", r"\1", value)  # Python reads at most microseconds
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def record_keys(record: OsvRecord) -> frozenset[Key]:
    """The (ecosystem, normalised name) keys a record is looked up by."""
    return frozenset(
        (a.ecosystem, normalize_name(a.ecosystem, a.name))
        for a in record.affected
        if a.ecosystem and a.name and len(a.name) <= MAX_KEY and len(a.ecosystem) <= 100
    )


def record_aliases(record: OsvRecord) -> frozenset[str]:
    """Every id the record answers to: its own, its aliases and upstream ids, and its CVE."""
    names = {record.id, *record.aliases, *record.upstream, *vulnerability_ids(record)}
    return frozenset(n for n in names if n and len(n) <= 255)


@dataclass
class ImportReport:
    documents: int = 0
    records: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    withdrawn: int = 0
    problem_count: int = 0
    problems: list[str] = field(default_factory=list)
    changed_keys: int = 0
    version: int | None = None  # the new database version; None when nothing changed

    def problem(self, message: str) -> None:
        self.problem_count += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(message)


@dataclass(frozen=True, slots=True)
class _Parsed:
    advisory: NewAdvisory
    withdrawn: bool


def _prepare(data: dict[str, Any], raw: bytes) -> NewAdvisory:
    record = OsvRecord.parse(data)
    if len(record.id) > 255:
        raise InvalidRecord("id longer than 255 characters")
    modified = parse_time(record.modified)
    if modified is None:
        raise InvalidRecord(f"modified {record.modified[:40]!r} is not an RFC 3339 time")
    withdrawn = parse_time(record.withdrawn) if record.withdrawn else None
    if record.withdrawn and withdrawn is None:
        withdrawn = modified  # withdrawn with an unreadable time is still withdrawn
    return NewAdvisory(
        id=record.id,
        modified=modified,
        published=parse_time(record.published),
        withdrawn=withdrawn,
        body=zlib.compress(raw, 1),
        keys=frozenset() if withdrawn else record_keys(record),
        aliases=frozenset() if withdrawn else record_aliases(record),
    )


class VulnerabilityDatabase:
    """Imports and reads the OSV records; parsed records are cached by (id, modified)."""

    def __init__(self, db: Database, *, cache_size: int = 8192) -> None:
        self.db = db
        self._cache: OrderedDict[str, tuple[datetime, OsvRecord]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    # -- import ------------------------------------------------------------------------------------
    def import_paths(self, paths: Sequence[Path], progress: Progress | None = None) -> ImportReport:
        """Import OSV JSON files, folders and zip dumps (blocking: call it from a thread or the CLI).

        Raises ``osvfiles.SourceError`` before importing anything when a path is not usable.
        """
        return self.import_sources(osvfiles.find_sources(paths), progress)

    def import_sources(
        self, sources: Sequence[osvfiles.OsvSource], progress: Progress | None = None
    ) -> ImportReport:
        report = ImportReport()
        total = sum(s.documents for s in sources)
        batch: dict[str, NewAdvisory] = {}
        for source in sources:
            for document in osvfiles.documents(source):
                report.documents += 1
                items, problems = osvfiles.records_of(document)
                for message in problems:
                    report.problem(message)
                for data, raw in items:
                    report.records += 1
                    try:
                        advisory = _prepare(data, raw)
                    except InvalidRecord as exc:
                        ident = data.get("id")
                        label = ident if isinstance(ident, str) else "a record"
                        report.problem(f"{document.where}: {label[:100]}: {exc}")
                        continue
                    held = batch.get(advisory.id)
                    if held is not None:  # the same record in two dumps: keep the newest
                        report.unchanged += 1
                        if held.modified >= advisory.modified:
                            continue
                    batch[advisory.id] = advisory
                if len(batch) >= BATCH:
                    self._write(list(batch.values()), report)
                    batch.clear()
                if progress is not None and (report.documents % 200 == 0 or report.documents == total):
                    progress(report.documents, total)
        if batch:
            self._write(list(batch.values()), report)
        report.version = self.db.write_sync(_finish)
        if progress is not None:
            progress(report.documents, total)
        log.info(
            "vulndb_imported",
            records=report.records,
            added=report.added,
            updated=report.updated,
            withdrawn=report.withdrawn,
            problems=report.problem_count,
            version=report.version,
        )
        return report

    def _write(self, batch: list[NewAdvisory], report: ImportReport) -> None:
        def work(session: Session) -> None:
            stored = store.stored_versions(session, [a.id for a in batch])
            newer = [a for a in batch if a.id not in stored or a.modified > stored[a.id]]
            report.unchanged += len(batch) - len(newer)
            replaced = [a.id for a in newer if a.id in stored]
            changed = store.keys_of(session, replaced)
            for advisory in newer:
                changed |= advisory.keys
                if advisory.withdrawn is not None:
                    report.withdrawn += 1
                elif advisory.id in stored:
                    report.updated += 1
                else:
                    report.added += 1
            store.replace(session, newer, existing=replaced)
            report.changed_keys += store.record_changes(session, changed)

        self.db.write_sync(work)

    # -- sync --------------------------------------------------------------------------------------
    def sync(
        self,
        base_url: str,
        ecosystems: Sequence[str],
        workdir: Path,
        progress: Progress | None = None,
        *,
        timeout: float = 120.0,
    ) -> SyncReport:
        """Fetch the changed per-ecosystem dumps and import them (blocking)."""
        report = SyncReport()
        workdir.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix="vulndb-sync-", dir=workdir))
        fetched: list[tuple[str, str | None, str | None, Path]] = []
        try:
            for ecosystem in ecosystems:
                url = dump_url(base_url, ecosystem)
                known = self.db.read_sync(store.source, url)
                outcome = _fetch(url, known, folder / f"{len(fetched)}.zip", timeout)
                if isinstance(outcome, str):
                    if outcome == NOT_MODIFIED:
                        report.unchanged.append(ecosystem)
                        self.db.write_sync(
                            lambda s, u=url, k=known: store.save_source(
                                s,
                                u,
                                etag=k.etag if k else None,
                                last_modified=k.last_modified if k else None,
                                changed=False,
                            )
                        )
                    else:
                        report.failed[ecosystem] = outcome
                    continue
                etag, last_modified, path = outcome
                report.fetched.append(ecosystem)
                fetched.append((url, etag, last_modified, path))
            if fetched:
                sources = [
                    osvfiles.OsvSource(path, osvfiles.ZIP, osvfiles.find_sources([path])[0].documents)
                    for _, _, _, path in fetched
                ]
                report.imported = self.import_sources(sources, progress)
                for url, etag, last_modified, _ in fetched:
                    self.db.write_sync(
                        lambda s, u=url, e=etag, m=last_modified: store.save_source(
                            s, u, etag=e, last_modified=m, changed=True
                        )
                    )
        except osvfiles.SourceError as exc:
            report.failed["import"] = str(exc)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        log.info(
            "vulndb_synced",
            fetched=report.fetched,
            unchanged=report.unchanged,
            failed=report.failed,
            version=report.imported.version if report.imported else None,
        )
        return report

    # -- reading -----------------------------------------------------------------------------------
    def state(self) -> State:
        return self.db.read_sync(store.state)

    def sources(self) -> list[SourceState]:
        return self.db.read_sync(store.sources)

    def records_for(self, session: Session, keys: Iterable[Key]) -> dict[Key, list[OsvRecord]]:
        """Parsed records for each key: their ids and versions in one indexed read, then the bodies of
        those not in the cache (a scan of an image on a known base reads none)."""
        listed = store.record_versions(session, keys)
        parsed: dict[str, OsvRecord] = {}
        with self._lock:
            for rows in listed.values():
                for ident, modified in rows:
                    hit = self._cache.get(ident)
                    if hit is not None and hit[0] == modified:
                        self._cache.move_to_end(ident)
                        parsed[ident] = hit[1]
        missing = {ident for rows in listed.values() for ident, _ in rows if ident not in parsed}
        for row in store.records_by_id(session, missing):
            parsed[row.id] = self.parsed(row)
        return {key: [parsed[i] for i, _ in rows if i in parsed] for key, rows in listed.items()}

    def parsed(self, row: StoredRecord) -> OsvRecord:
        with self._lock:
            hit = self._cache.get(row.id)
            if hit is not None and hit[0] == row.modified:
                self._cache.move_to_end(row.id)
                return hit[1]
        record = decode_record(row.body)
        with self._lock:
            self._cache[row.id] = (row.modified, record)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return record

    def advisory(self, session: Session, ident: str) -> AdvisoryView | None:
        """One vulnerability by id or alias: the record of that id and the records naming it, merged."""
        rows = store.records_named(session, ident)
        if not rows:
            return None
        return advisory_view(ident, [self.parsed(r) for r in rows])


def decode_record(body: bytes) -> OsvRecord:
    import json

    return OsvRecord.parse(json.loads(zlib.decompress(body)))


def _finish(session: Session) -> int | None:
    version = store.finish_import(session)
    if version is not None:
        enqueue(session, RESCAN_JOB, {"version": version}, dedupe_key=RESCAN_JOB, concurrency_key=RESCAN_JOB)
    return version


# -- sync helpers ----------------------------------------------------------------------------------

NOT_MODIFIED = "not modified"


@dataclass
class SyncReport:
    fetched: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    imported: ImportReport | None = None


def dump_url(base_url: str, ecosystem: str) -> str:
    return f"{base_url.rstrip('/')}/{urllib.parse.quote(ecosystem, safe='')}/all.zip"


def _fetch(
    url: str, known: SourceState | None, target: Path, timeout: float
) -> tuple[str | None, str | None, Path] | str:
    """(etag, last-modified, file) of a changed dump, else NOT_MODIFIED or the reason it failed."""
    request = urllib.request.Request(url, headers={"User-Agent": "cargobay-vulndb-sync"})
    if known is not None and known.etag:
        request.add_header("If-None-Match", known.etag)
    if known is not None and known.last_modified:
        request.add_header("If-Modified-Since", known.last_modified)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out, 1024 * 1024)
            return response.headers.get("ETag"), response.headers.get("Last-Modified"), target
    except urllib.error.HTTPError as exc:
        if exc.code == 304:
            return NOT_MODIFIED
        return f"HTTP {exc.code} from {url}"
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return f"cannot fetch {url}: {exc}"


# -- one advisory, as the API and the CLI show it ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AffectedRange:
    type: str  # purl type
    name: str
    ecosystem: str
    versions: str  # a vers-like range, e.g. "<2.36-9+deb12u3"
    fixed: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AdvisoryView:
    id: str
    aliases: tuple[str, ...]
    summary: str
    description: str
    published: datetime | None
    modified: datetime | None
    severity: str
    score: float | None
    cvss_vector: str
    references: tuple[str, ...]
    affects: tuple[AffectedRange, ...]
    data_source: str  # the record the description comes from
    data_source_url: str
    fixable: bool


_PURL_TYPES = {
    "Debian": "deb",
    "Ubuntu": "deb",
    "Alpine": "apk",
    "Wolfi": "apk",
    "Chainguard": "apk",
    "PyPI": "pypi",
    "npm": "npm",
    "Go": "golang",
    "Maven": "maven",
    "crates.io": "cargo",
    "RubyGems": "gem",
    "NuGet": "nuget",
    "Packagist": "composer",
    "Hex": "hex",
    "Pub": "pub",
}
_RPM_BASES = ("Red Hat", "Rocky Linux", "AlmaLinux", "SUSE", "openSUSE", "Mageia", "openEuler")


def purl_type(ecosystem: str) -> str:
    base = ecosystem.split(":", 1)[0]
    if base in _PURL_TYPES:
        return _PURL_TYPES[base]
    if base in _RPM_BASES:
        return "rpm"
    return base.lower().replace(" ", "-") or "generic"


def _range_text(affected: Affected) -> tuple[str, tuple[str, ...]]:
    parts: list[str] = []
    fixed: list[str] = []
    for rng in affected.ranges:
        if rng.type not in ("ECOSYSTEM", "SEMVER"):
            continue
        for event in rng.events:
            if event.kind == "introduced" and event.version != "0":
                parts.append(f">={event.version}")
            elif event.kind == "fixed":
                parts.append(f"<{event.version}")
                fixed.append(event.version)
            elif event.kind == "last_affected":
                parts.append(f"<={event.version}")
    listed = [f"={v}" for v in affected.versions[:20]]
    text = "|".join(parts + listed) if parts or listed else "*"
    return text, tuple(dict.fromkeys(fixed))


def _rank(record: OsvRecord, ident: str) -> tuple[int, str]:
    """The record whose text describes the vulnerability best: its own, then one of its CVE, then
    one with details, then any advisory."""
    if record.id == ident:
        return (0, record.id)
    if ident in vulnerability_ids(record) and record.details:
        return (1, record.id)
    if record.details:
        return (2, record.id)
    return (3, record.id)


def advisory_view(ident: str, records: Sequence[OsvRecord]) -> AdvisoryView:
    ordered = sorted(records, key=lambda r: _rank(r, ident))
    first = ordered[0]
    severities: list[Severity] = []
    aliases: dict[str, None] = {}
    references: dict[str, None] = {}
    affects: dict[tuple[str, str, str], AffectedRange] = {}
    for record in ordered:
        severities.extend(record.severity)
        for other in (record.id, *record.aliases, *record.upstream):
            if other != ident:
                aliases[other] = None
        references.update(dict.fromkeys(record.references))
        for affected in record.affected:
            severities.extend(affected.severity)
            versions, fixed = _range_text(affected)
            key = (affected.ecosystem, affected.name, versions)
            affects.setdefault(
                key,
                AffectedRange(
                    purl_type(affected.ecosystem), affected.name, affected.ecosystem, versions, fixed
                ),
            )
    score = severity.best_score(severities)
    published = [t for r in ordered if (t := parse_time(r.published)) is not None]
    modified = [t for r in ordered if (t := parse_time(r.modified)) is not None]
    return AdvisoryView(
        id=ident,
        aliases=tuple(sorted(aliases)),
        summary=first.summary,
        description=first.details or first.summary or next((r.summary for r in ordered if r.summary), ""),
        published=min(published) if published else None,
        modified=max(modified) if modified else None,
        severity=severity.bucket(score.base if score else None),
        score=score.base if score else None,
        cvss_vector=score.vector if score else "",
        references=tuple(references),
        affects=tuple(affects.values()),
        data_source=first.id,
        data_source_url=OSV_URL + urllib.parse.quote(first.id, safe=""),
        fixable=any(a.fixed for a in affects.values()),
    )
