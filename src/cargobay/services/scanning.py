"""Vulnerability scanning of pushed artifacts: the scan, rescan, backlog and SBOM jobs.

A scan of an image manifest reads each layer blob once per registry: the layer's inventory
(``scanning.layers.read_layer``, fed from the blob store through the encryption wrapper in a worker
thread) is cached by layer digest, the merged inventory of the manifest is stored with an index of its
package keys, and the matches against the vulnerability database become the manifest's findings and
summary. An image index shows the union of its children (each scanned as a manifest of its own). An
artifact that is not an image (a Helm chart, a signature, an SBOM: any config other than an image
config) is ``unsupported``: scanned at a time, severity unknown, no counts. An image whose layers
cannot be read (a blob missing or damaged, no layer a tar stream) is ``failed`` the same way.

Rescans never read a layer: after a database update, the inventories holding a changed package key
(a query on the key index) have those packages matched again, in the artifacts pushed or pulled in
the last 30 days; the other artifacts keep their results and scan times.

Inventories and SBOMs are stored as zlib-compressed JSON sealed with the registry's data key.
"""

from __future__ import annotations

import asyncio
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import IO, Any, TypeVar, cast

from sqlalchemy.orm import Session

from cargobay.db.engine import Database
from cargobay.db.queries import findings, scans
from cargobay.db.queries import vulndb as vulndb_queries
from cargobay.db.queries.findings import FindingRow, Summary
from cargobay.db.queries.scans import Rescannable, ScanTarget
from cargobay.db.types import utcnow
from cargobay.domain import jsontext, mediatypes
from cargobay.domain.errors import InvalidInput
from cargobay.domain.manifests import ParsedManifest, parse_manifest
from cargobay.logs import get_logger
from cargobay.scanning import matcher
from cargobay.scanning.inventory import (
    ImageInventory,
    ImagePackage,
    InventoryFormatError,
    LayerInventory,
    merge,
)
from cargobay.scanning.layers import read_layer
from cargobay.scanning.osv import OsvRecord
from cargobay.scanning.sbom import cyclonedx_json
from cargobay.services import scan_jobs
from cargobay.services.manifests import manifest_context
from cargobay.services.scan_results import (
    NONE_RANK,
    Key,
    compact,
    inventory_keys,
    key_line,
    match_key,
    rows_from_findings,
    rows_from_matches,
    union,
)
from cargobay.services.vulndb import VulnerabilityDatabase
from cargobay.storage.base import BlobStore, IntegrityError, ObjectNotFound
from cargobay.storage.sealing import Sealer
from cargobay.storage.streams import BlockingReader

log = get_logger("cargobay.scanning")

T = TypeVar("T")
RECENT = timedelta(days=30)  # the IONOS rule: artifacts pushed or pulled this recently are rescanned
IMAGE_CONFIGS = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)
RESCAN_BATCH = 200
BACKLOG_BATCH = 500
MAX_REMATCH = 3  # a scan re-matches at most this often when the database changes under it


class Unscannable(Exception):
    """The image cannot be read (its result is ``failed``); the message says why."""


@dataclass
class ScanOutcome:
    status: str
    findings: int = 0
    packages: int = 0
    layers_read: int = 0
    layers_cached: int = 0
    inventory_cached: bool = False
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "findings": self.findings, "packages": self.packages}
        if self.layers_read or self.layers_cached:
            out.update(layers_read=self.layers_read, layers_cached=self.layers_cached)
        if self.inventory_cached:
            out["inventory_cached"] = True
        if self.reason:
            out["reason"] = self.reason
        return out


@dataclass
class RescanReport:
    version: int = 0
    inventories: int = 0
    artifacts: int = 0
    changed: int = 0
    skipped_old: int = 0
    details: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "inventories": self.inventories,
            "artifacts": self.artifacts,
            "changed": self.changed,
        }


def is_image(parsed: ParsedManifest) -> bool:
    return (
        parsed.media_type in mediatypes.IMAGE_MANIFESTS
        and parsed.config is not None
        and parsed.config.media_type in IMAGE_CONFIGS
    )


class ScanService:
    def __init__(self, db: Database, store: BlobStore, sealer: Sealer, vulndb: VulnerabilityDatabase) -> None:
        self.db = db
        self.store = store
        self.sealer = sealer
        self.vulndb = vulndb
        self._verdicts = matcher.MatchMemo()  # images on one base: their packages are matched once

    # -- sealed JSON -------------------------------------------------------------------------------
    async def _seal(self, registry_id: str, context: bytes, value: Callable[[], Any]) -> bytes:
        """Seal the JSON of ``value()`` (built, encoded and compressed in a worker thread)."""
        data = await asyncio.to_thread(lambda: _compressed(value()))
        return await self.sealer.seal(registry_id, context, data)

    async def _open(
        self, registry_id: str, context: bytes, sealed: bytes, parse: Callable[[Any], T]
    ) -> T | None:
        """The stored JSON as ``parse`` reads it (in a worker thread), or None when it cannot be opened
        or was written in another format (it is then computed again)."""
        try:
            data = await self.sealer.open(registry_id, context, sealed)
            return await asyncio.to_thread(lambda: parse(json.loads(zlib.decompress(data))))
        except InventoryFormatError:
            return None  # written by another release: computed again
        except (IntegrityError, zlib.error, ValueError) as exc:
            log.warning(
                "scan_cache_unreadable",
                registry=registry_id,
                context=context[:80].decode(errors="replace"),
                error=str(exc),
            )
            return None

    # -- the scan job ------------------------------------------------------------------------------
    async def scan(self, manifest_id: int) -> ScanOutcome:
        """Scan one manifest (idempotent: a job may run twice)."""
        target = await self.db.read(scans.target, manifest_id)
        if target is None:
            return ScanOutcome("gone")
        if not target.scanning:
            return ScanOutcome("off")
        if not scan_jobs.scannable_name(target.repository):
            await self.db.write(scans.set_status, [target.id], scans.SKIPPED, None)
            return ScanOutcome(scans.SKIPPED, reason="repository name shorter than 2 or longer than 255")
        try:
            body = await self.sealer.open(target.registry_id, manifest_context(target.digest), target.body)
            parsed = parse_manifest(body, target.media_type)
        except (IntegrityError, InvalidInput) as exc:
            return await self._finish_without_counts(target, scans.FAILED, f"manifest unreadable: {exc}")
        if parsed.children:
            return await self._scan_index(target, parsed)
        if not is_image(parsed):
            return await self._finish_without_counts(target, scans.UNSUPPORTED, "not a container image")
        return await self._scan_image(target, parsed)

    async def _finish_without_counts(self, target: ScanTarget, status: str, reason: str) -> ScanOutcome:
        def work(session: Session) -> None:
            scans.set_status(session, [target.id], status, utcnow())
            findings.replace_findings(session, target.id, target.registry_id, [])
            self._reaggregate_parents(session, target.repository_id, target.digest)

        await self.db.write(work)
        log.info("scan_finished", manifest=target.id, status=status, reason=reason)
        return ScanOutcome(status, reason=reason)

    async def _scan_image(self, target: ScanTarget, parsed: ParsedManifest) -> ScanOutcome:
        outcome = ScanOutcome(scans.SCANNED)
        inventory = await self._stored_inventory(target.registry_id, target.digest)
        if inventory is not None:
            outcome.inventory_cached = True
        else:
            try:
                inventory = await self._build_inventory(target.registry_id, parsed, outcome)
            except Unscannable as exc:
                return await self._finish_without_counts(target, scans.FAILED, str(exc))
            await self.save_inventory(target.registry_id, target.digest, inventory)
        outcome.packages = len(inventory.packages)
        for _ in range(MAX_REMATCH):
            version = (await self.db.read(vulndb_queries.state)).version
            rows = await self._match(inventory)
            await self.db.write(self._save_results, target, rows, version)
            if (await self.db.read(vulndb_queries.state)).version == version:
                break  # no import ended while we matched: the result is current
        outcome.findings = len(rows)
        await self.db.write(self._queue_sbom, target)
        log.info("scan_finished", manifest=target.id, **outcome.to_json())
        return outcome

    def _save_results(
        self, session: Session, target: ScanTarget, rows: list[FindingRow], version: int
    ) -> None:
        findings.replace_findings(session, target.id, target.registry_id, rows)
        scans.save_summary(session, target.id, Summary.of(rows, utcnow(), version, NONE_RANK))
        self._reaggregate_parents(session, target.repository_id, target.digest)

    def _queue_sbom(self, session: Session, target: ScanTarget) -> None:
        if scans.sbom(session, target.registry_id, target.digest) is None:
            from cargobay.jobs.queue import enqueue

            enqueue(
                session,
                scan_jobs.SBOM_JOB,
                {"registry_id": target.registry_id, "digest": target.digest, "name": target.repository},
                dedupe_key=f"sbom:{target.registry_id}:{target.digest}",
            )

    async def _scan_index(self, target: ScanTarget, parsed: ParsedManifest) -> ScanOutcome:
        """An index shows the union of its children's findings once none of them is pending; the
        last child to finish aggregates it when the index's own job comes first."""
        digests = [str(c.digest) for c in parsed.children]

        def work(session: Session) -> str:
            found = scans.children(session, target.repository_id, digests)
            waiting = False
            for child_id, status in found.values():
                if status is None:
                    scan_jobs.queue_manifest(session, child_id, target.repository)
                    waiting = True
                waiting = waiting or status == scans.PENDING
            if waiting:
                return scans.PENDING
            version = vulndb_queries.state(session).version
            return self._aggregate_index(session, target.id, target.repository_id, digests, version)

        status = await self.db.write(work)
        log.info("scan_finished", manifest=target.id, status=status, index=True)
        return ScanOutcome(status)

    def _aggregate_index(
        self, session: Session, index_id: int, repository_id: int, digests: Sequence[str], version: int | None
    ) -> str:
        """Write an index's result from its children's (all of them done); returns its status."""
        children = scans.children(session, repository_id, digests)
        statuses = [status for _, status in children.values()]
        registry_id = scans.registry_of(session, index_id)
        scanned = [cid for cid, status in children.values() if status == scans.SCANNED]
        if not scanned:
            status = scans.FAILED if scans.FAILED in statuses else scans.UNSUPPORTED
            findings.replace_findings(session, index_id, registry_id, [])
            scans.set_status(session, [index_id], status, utcnow())
            return status
        rows = union(findings.all_findings(session, scanned))
        findings.replace_findings(session, index_id, registry_id, rows)
        scans.save_summary(session, index_id, Summary.of(rows, utcnow(), version or 0, NONE_RANK))
        return scans.SCANNED

    def _reaggregate_parents(self, session: Session, repository_id: int, digest: str) -> None:
        """Indexes that list this manifest: one already scanned shows its new results, one waiting for
        its children is written once none of them is pending."""
        for parent_id in scans.parents(session, repository_id, digest):
            self._reaggregate(session, parent_id, repository_id)

    def _reaggregate(self, session: Session, parent_id: int, repository_id: int) -> None:
        state = scans.state(session, parent_id)
        if state is None or state.status not in (scans.SCANNED, scans.PENDING):
            return
        digests = scans.child_digests(session, parent_id)
        children = scans.children(session, repository_id, digests)
        if any(status in (None, scans.PENDING) for _, status in children.values()):
            return
        version = state.db_version
        if version is None:
            version = vulndb_queries.state(session).version
        self._aggregate_index(session, parent_id, repository_id, digests, version)

    async def mark_failed(self, manifest_id: int, reason: str) -> None:
        """A scan that failed on its last attempt: the artifact shows Unknown with a scan time."""
        target = await self.db.read(scans.target, manifest_id)
        if target is not None and target.status in (None, scans.PENDING):
            await self._finish_without_counts(target, scans.FAILED, reason)

    # -- inventories -------------------------------------------------------------------------------
    async def _stored_inventory(self, registry_id: str, digest: str) -> ImageInventory | None:
        sealed = await self.db.read(scans.inventory, registry_id, digest)
        if sealed is None:
            return None
        return await self._open(
            registry_id, b"scan-inventory:" + digest.encode(), sealed, ImageInventory.from_json
        )

    async def _build_inventory(
        self, registry_id: str, parsed: ParsedManifest, outcome: ScanOutcome
    ) -> ImageInventory:
        layers: list[LayerInventory] = []
        wanted = [d for d in parsed.layers if d.media_type not in mediatypes.NON_DISTRIBUTABLE_LAYERS]
        cached = await self.db.read(scans.layers, registry_id, [str(d.digest) for d in wanted])
        for descriptor in wanted:
            digest = str(descriptor.digest)
            layer = await self._cached_layer(registry_id, digest, cached.get(digest))
            if layer is None:
                layer = await self._read_layer(registry_id, digest)
                if layer.entries == 0 and layer.errors:
                    raise Unscannable(f"layer {digest} is not a readable tar stream: {layer.errors[0]}")
                sealed = await self._seal(registry_id, b"scan-layer:" + digest.encode(), layer.to_json)
                await self.db.write(scans.save_layer, registry_id, digest, sealed)
                outcome.layers_read += 1
            else:
                outcome.layers_cached += 1
            layers.append(layer)
        return await asyncio.to_thread(merge, layers)

    async def _cached_layer(
        self, registry_id: str, digest: str, sealed: bytes | None
    ) -> LayerInventory | None:
        if sealed is None:
            return None
        context = b"scan-layer:" + digest.encode()
        return await self._open(registry_id, context, sealed, LayerInventory.from_json)

    async def _read_layer(self, registry_id: str, digest: str) -> LayerInventory:
        key = await self.db.read(scans.blob_key, registry_id, digest)
        if key is None:
            raise Unscannable(f"layer {digest} is not stored in the registry")
        loop = asyncio.get_running_loop()
        try:
            chunks = self.store.reader(key)
            reader = BlockingReader(chunks, loop)

            def run() -> LayerInventory:
                try:
                    return read_layer(cast("IO[bytes]", reader))
                finally:
                    reader.close()

            return await asyncio.to_thread(run)
        except (ObjectNotFound, IntegrityError) as exc:
            raise Unscannable(
                f"layer {digest} cannot be read from storage: {type(exc).__name__}: {exc}"
            ) from None

    async def save_inventory(self, registry_id: str, digest: str, inventory: ImageInventory) -> None:
        def encode() -> tuple[bytes, dict[Key, list[dict[str, Any]]]]:
            data = inventory.to_json()
            return _compressed(data), inventory_keys(inventory, data["packages"])

        compressed, keys = await asyncio.to_thread(encode)
        sealed = await self.sealer.seal(registry_id, b"scan-inventory:" + digest.encode(), compressed)
        os_name = inventory.os.pretty_name or inventory.os.ecosystem if inventory.os else ""
        await self.db.write(
            scans.save_inventory, registry_id, digest, sealed, len(inventory.packages), os_name, keys
        )

    # -- matching ----------------------------------------------------------------------------------
    async def _records(self, keys: Sequence[Key]) -> dict[Key, list[OsvRecord]]:
        return await self.db.read(self.vulndb.records_for, keys)

    async def _match(self, inventory: ImageInventory) -> list[FindingRow]:
        records = await self._records(sorted(matcher.lookup_keys(inventory)))

        def run() -> list[FindingRow]:
            found = matcher.match(inventory, lambda e, n: records.get((e, n), ()), self._verdicts)
            return rows_from_findings(found)

        return await asyncio.to_thread(run)

    # -- rescans -----------------------------------------------------------------------------------
    async def rescan(self, now: datetime | None = None) -> RescanReport:
        """Re-match what the database changes since the last rescan can change (see the module doc)."""
        report = RescanReport()
        recent = (now or utcnow()) - RECENT
        while True:  # again if an import ended while we worked (its job found ours running)
            state = await self.db.read(vulndb_queries.state)
            report.version = state.version
            if state.version <= state.rescanned_version:
                break
            await self._rescan_since(state.rescanned_version, state.version, recent, report)
            await self.db.write(vulndb_queries.mark_rescanned, state.version)
        log.info("rescan_finished", **report.to_json())
        return report

    async def _rescan_since(self, since: int, version: int, recent: datetime, report: RescanReport) -> None:
        oldest = await self.db.read(scans.oldest_scan_version, version, recent)
        if oldest is None:
            return  # every artifact a rescan may touch was matched at this version already
        since = max(since, oldest)  # older changes were matched by the artifacts' own scans
        after: tuple[str, str] | None = None
        while True:
            batch = await self.db.read(scans.changed_inventories, since, RESCAN_BATCH, after)
            if not batch:
                return
            after = batch[-1]
            report.inventories += len(batch)
            targets = await self.db.read(scans.rescannable, batch, version, recent)
            if targets:
                report.changed += await self._rescan_batch(targets, since, version)
                report.artifacts += len(targets)

    async def _rescan_batch(self, targets: list[Rescannable], since: int, version: int) -> int:
        inventories = sorted({(t.registry_id, t.digest) for t in targets})
        # Changes a target's own scan saw need no re-match: read those after the oldest target's version.
        floor = max(since, min(t.db_version for t in targets))
        changed = await self.db.read(scans.changed_keys_of, inventories, floor)
        records = await self._records(sorted({k for keys in changed.values() for k in keys}))

        def match_all() -> dict[tuple[str, str], dict[Key, tuple[str, list[dict[str, Any]]]]]:
            """(packages signature, matches) of each changed key; the same packages (a shared base
            layer) are matched once for the whole batch."""
            memo: dict[tuple[Key, str], list[dict[str, Any]]] = {}
            out: dict[tuple[str, str], dict[Key, tuple[str, list[dict[str, Any]]]]] = {}
            for inventory, keys in changed.items():
                mine = out.setdefault(inventory, {})
                for key, (signature, _) in keys.items():  # the stored packages text
                    if (key, signature) not in memo:
                        packages = json.loads(signature)
                        image = ImageInventory(None, tuple(ImagePackage.from_json(p) for p in packages))
                        found = matcher.match(image, lambda e, n: records.get((e, n), []), self._verdicts)
                        memo[(key, signature)] = [compact(f) for f in found]
                    mine[key] = (signature, memo[(key, signature)])
            return out

        matched = await asyncio.to_thread(match_all)

        def work(session: Session) -> int:
            return self._apply_rescans(session, targets, changed, matched, version)

        return await self.db.write(work)

    def _apply_rescans(
        self,
        session: Session,
        targets: list[Rescannable],
        changed: dict[tuple[str, str], scans.ChangedKeys],
        matched: dict[tuple[str, str], dict[Key, tuple[str, list[dict[str, Any]]]]],
        version: int,
    ) -> int:
        """Replace the matches of the changed keys in each artifact (a few statements per batch);
        returns how many artifacts' findings changed.

        An artifact's findings are a function of its packages and the database version it was matched
        at: artifacts scanned at the same version whose changed keys hold the same packages (images on
        one base) get the same new findings, so one of them is worked out and the others copy it,
        unless a finding it rewrites also has packages of other keys, in it or in the other (then
        each is worked out on its own: those packages differ between images).
        """
        todo: dict[int, _Rematch] = {}
        current: list[int] = []
        groups: dict[tuple[Any, ...], list[int]] = {}
        for target in targets:
            inventory = (target.registry_id, target.digest)
            mine = sorted(
                k for k, (_, latest) in changed.get(inventory, {}).items() if latest > target.db_version
            )
            if not mine:
                current.append(target.id)  # every change it holds was matched by its own scan
                continue
            new = [m for k in mine for m in matched[inventory][k][1]]
            todo[target.id] = _Rematch(target, {key_line(k) for k in mine}, new)
            group = (target.db_version, tuple((k, matched[inventory][k][0]) for k in mine))
            groups.setdefault(group, []).append(target.id)
        scans.mark_current(session, current, version)
        if not todo:
            return 0
        first = self._rematch_many(session, {ids[0]: todo[ids[0]] for ids in groups.values()})
        replacements = [r.replacement for r in first.values() if r.replacement is not None]
        alone: dict[int, _Rematch] = {}
        for ids in groups.values():
            worked, others = first[ids[0]], ids[1:]
            if others and worked.closed:
                stored = findings.finding_keys_by_id(session, others, sorted(worked.relevant))
                lines = todo[ids[0]].lines
                beyond = {m for m, rows in stored.items() if any(not _within(f.keys, lines) for f in rows)}
            else:
                beyond = set(others)
            for other in others:
                if other in beyond:
                    alone[other] = todo[other]
                elif worked.replacement is not None:
                    target, replacement = todo[other].target, worked.replacement
                    replacements.append(
                        findings.Replacement(
                            target.id, target.registry_id, replacement.vulnerability_ids, replacement.rows
                        )
                    )
        replacements += [
            r.replacement for r in self._rematch_many(session, alone).values() if r.replacement is not None
        ]
        findings.replace_many(session, replacements)
        scans.save_summaries(
            session, findings.summarize_many(session, list(todo), utcnow(), version, NONE_RANK)
        )
        changed_ids = {r.manifest_id for r in replacements}
        children = [(todo[m].target.repository_id, todo[m].target.digest) for m in changed_ids]
        for parent_id, repository_id in scans.parents_of(session, children):
            self._reaggregate(session, parent_id, repository_id)
        return len(replacements)

    def _rematch_many(self, session: Session, todo: dict[int, _Rematch]) -> dict[int, _Rematched]:
        """What to write for each artifact, from its stored findings."""
        if not todo:
            return {}
        every_line = sorted({line for r in todo.values() for line in r.lines})
        stored = findings.finding_keys_of(session, list(todo), every_line if len(every_line) <= 500 else None)
        affected: dict[int, set[str]] = {}
        for manifest_id, rematch in todo.items():
            hit = {
                f.vulnerability_id for f in stored.get(manifest_id, []) if _has_line(f.keys, rematch.lines)
            }
            affected[manifest_id] = hit | {str(m["id"]) for m in rematch.new}
        old = findings.findings_of(session, affected)
        return {
            manifest_id: _rematched(rematch.target, old.get(manifest_id, []), rematch.lines, rematch.new)
            for manifest_id, rematch in todo.items()
        }

    # -- queueing ----------------------------------------------------------------------------------
    async def queue_registry(self, registry_id: str | None = None) -> int:
        """Queue the never-queued manifests of one registry (or of every registry that scans)."""
        total = 0
        while True:
            rows = await self.db.read(scans.unqueued, registry_id, BACKLOG_BATCH)
            if not rows:
                return total

            def work(session: Session, batch: list[tuple[int, str, str]] = rows) -> None:
                for manifest_id, _, repository in batch:
                    scan_jobs.queue_manifest(session, manifest_id, repository)

            await self.db.write(work)
            total += len(rows)

    # -- SBOM --------------------------------------------------------------------------------------
    async def build_sbom(self, registry_id: str, digest: str, name: str) -> bool:
        """CycloneDX 1.6 JSON of a stored inventory (built in a job: a thousand packages take a second)."""
        inventory = await self._stored_inventory(registry_id, digest)
        if inventory is None:
            return False
        text = await asyncio.to_thread(cyclonedx_json, inventory, name=name, version=digest)
        sealed = await self.sealer.seal(
            registry_id,
            b"scan-sbom:" + digest.encode(),
            await asyncio.to_thread(zlib.compress, text.encode(), 6),
        )
        await self.db.write(scans.save_sbom, registry_id, digest, sealed)
        return True

    async def sbom(self, registry_id: str, digest: str) -> str | None:
        sealed = await self.db.read(scans.sbom, registry_id, digest)
        if sealed is None:
            return None
        try:
            data = await self.sealer.open(registry_id, b"scan-sbom:" + digest.encode(), sealed)
            return zlib.decompress(data).decode()
        except (IntegrityError, zlib.error, UnicodeDecodeError):
            return None


def _compressed(value: Any) -> bytes:
    """What is sealed for a stored inventory: its compact JSON, zlib-compressed."""
    return zlib.compress(jsontext.dumps(value), 6)


@dataclass(frozen=True, slots=True)
class _Rematch:
    target: Rescannable
    lines: set[str]  # the changed keys it holds ("ecosystem<TAB>name")
    new: list[dict[str, Any]]  # their new matches


@dataclass(frozen=True, slots=True)
class _Rematched:
    """What a rescan writes for one artifact (None: nothing), the findings it read to work that out
    (``relevant``), and whether those hold packages of the changed keys only (``closed``: then an
    artifact with the same packages in those keys, matched at the same version, gets the same)."""

    replacement: findings.Replacement | None
    relevant: frozenset[str]
    closed: bool


def _rematched(
    target: Rescannable, old_rows: list[FindingRow], lines: set[str], new: list[dict[str, Any]]
) -> _Rematched:
    """The findings to write after the keys ``lines`` were matched again (``new``).

    A key whose matches came out as before (its advisories were republished with a newer
    ``modified`` and nothing else, which osv.dev does daily) changes nothing; only the findings of
    keys whose matches differ are rebuilt, with the matches of other keys they hold (a vulnerability
    a new advisory adds to a package may already be on another), and of those only the ones that
    differ are written.
    """
    before: dict[str, list[dict[str, Any]]] = {}
    for row in old_rows:
        for match in row.matches:
            line = key_line(match_key(match))
            if line in lines:
                before.setdefault(line, []).append(match)
    after: dict[str, list[dict[str, Any]]] = {}
    for match in new:
        after.setdefault(key_line(match_key(match)), []).append(match)
    moved = {
        line for line in lines if _matches_print(before.get(line, [])) != _matches_print(after.get(line, []))
    }
    if not moved:
        return _Rematched(None, frozenset(), closed=True)
    arriving = [m for line in moved for m in after.get(line, [])]
    arriving_ids = {str(m["id"]) for m in arriving}
    touched = [row for row in old_rows if _has_line(row.keys, moved) or row.vulnerability_id in arriving_ids]
    kept = [m for row in touched for m in row.matches if key_line(match_key(m)) not in moved]
    rebuilt = {row.vulnerability_id: row for row in rows_from_matches(kept + arriving)}
    previous = {row.vulnerability_id: row for row in touched}
    write = [row for ident, row in rebuilt.items() if _row_print(previous.get(ident)) != _row_print(row)]
    gone = set(previous) - set(rebuilt)
    replacement = None
    if write or gone:
        replacement = findings.Replacement(
            target.id, target.registry_id, frozenset(gone | {r.vulnerability_id for r in write}), write
        )
    closed = all(_within(row.keys, lines) for row in touched)
    return _Rematched(replacement, frozenset(previous) | frozenset(rebuilt), closed)


def _matches_print(matches: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return sorted(
        (
            str(m.get("id")),
            str(m.get("purl") or m.get("package")),
            str(m.get("installed_version")),
            str(m.get("fixed_version")),
            str(m.get("severity")),
            m.get("score"),
            str(m.get("published")),
            str(m.get("modified")),
            tuple(m.get("aliases", ())),
            tuple(m.get("data_source", ())),
        )
        for m in matches
    )


def _row_print(row: FindingRow | None) -> tuple[Any, ...] | None:
    """What a rescan compares: a vulnerability's rating and the packages, versions and fixes behind it."""
    if row is None:
        return None
    return (
        row.severity,
        row.score,
        row.fixable,
        row.published_at,
        row.updated_at,
        row.aliases,
        tuple(
            (m.get("purl"), m.get("installed_version"), m.get("fixed_version"), m.get("severity"))
            for m in row.matches
        ),
    )


def _within(keys: str, lines: set[str]) -> bool:
    """Whether every key line of a finding is one of ``lines``."""
    if "\n" not in keys:
        return keys in lines
    return lines.issuperset(keys.split("\n"))


def _has_line(keys: str, lines: set[str]) -> bool:
    """Whether a finding's key lines meet ``lines`` (almost every finding has one key)."""
    if "\n" not in keys:
        return keys in lines
    return not lines.isdisjoint(keys.split("\n"))


# -- one artifact, for `cargobay scan` ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ImageRef:
    registry: str
    repository: str
    reference: str  # a tag or a digest


def parse_image(image: str) -> ImageRef:
    """``registry/repository:tag`` or ``registry/repository@sha256:…``; a leading host (``localhost:5000/``,
    ``registry.example.com/``) is dropped, as registry names hold neither ``.`` nor ``:``."""
    text = image.strip()
    parts = text.split("/")
    if len(parts) > 2 and (parts[0] == "localhost" or "." in parts[0] or ":" in parts[0]):
        parts = parts[1:]
    if len(parts) < 2 or not all(parts):
        raise InvalidInput(
            f"{image!r} is not registry/repository:tag or registry/repository@digest", field="IMAGE"
        )
    registry, rest = parts[0], "/".join(parts[1:])
    if "@" in rest:
        repository, reference = rest.split("@", 1)
    elif ":" in rest.rsplit("/", 1)[-1]:
        repository, reference = rest.rsplit(":", 1)
    else:
        repository, reference = rest, "latest"
    if not repository or not reference:
        raise InvalidInput(f"{image!r} names no repository or reference", field="IMAGE")
    return ImageRef(registry, repository, reference)


@dataclass(frozen=True, slots=True)
class ArtifactScan:
    image: ImageRef
    registry_id: str
    manifest_id: int
    digest: str
    state: scans.ScanState
    rows: list[FindingRow]


async def locate(db: Database, image: ImageRef) -> tuple[str, int, str]:
    """(registry id, manifest id, digest) of an image of this installation; NotFound otherwise."""
    from cargobay.domain.errors import NotFound

    def work(session: Session) -> tuple[str, int, str]:
        registry_id = scans.registry_id_of(session, image.registry)
        if registry_id is None:
            raise NotFound("registry", image.registry, f"registry {image.registry!r} not found")
        manifest_id = scans.manifest_id_of(session, registry_id, image.repository, image.reference)
        if manifest_id is None:
            raise NotFound(
                "artifact",
                image.reference,
                f"{image.repository}:{image.reference} not found in {image.registry}",
            )
        return registry_id, manifest_id, scans.digest_of(session, manifest_id)

    return await db.read(work)


async def artifact_scan(service: ScanService, image: str, *, scan: str = "missing") -> ArtifactScan:
    """The findings of one artifact; ``scan`` "missing" scans it now when it has no result, "always"
    scans it again, "never" only reads."""
    ref = parse_image(image)
    registry_id, manifest_id, digest = await locate(service.db, ref)
    state = await service.db.read(scans.state, manifest_id)
    if scan == "always" or (scan == "missing" and (state is None or state.status in (None, scans.PENDING))):
        await service.db.write(
            lambda s: scans.set_status(s, [manifest_id], scans.PENDING, None) if scan == "always" else None
        )
        await service.scan(manifest_id)
        state = await service.db.read(scans.state, manifest_id)
    assert state is not None
    rows = await service.db.read(findings.findings, manifest_id)
    return ArtifactScan(ref, registry_id, manifest_id, digest, state, rows)
