"""Manifests and tags: push with reference checks, pull, delete, tag listing, referrers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from cargobay.db.engine import Database, RawTx
from cargobay.db.models import Manifest
from cargobay.db.queries import manifests, repositories, scans
from cargobay.db.queries.manifests import StoredManifest
from cargobay.db.queries.registries import add_storage
from cargobay.db.types import utcnow
from cargobay.domain.digests import Digest, is_digest
from cargobay.domain.errors import DigestMismatch, ManifestBlobUnknown, ManifestChildUnknown
from cargobay.domain.manifests import ParsedManifest, parse_manifest
from cargobay.domain.names import check_tag
from cargobay.services import scan_jobs
from cargobay.storage.base import IntegrityError
from cargobay.storage.sealing import Sealer


@dataclass(frozen=True, slots=True)
class ManifestView:
    id: int
    repository_id: int
    digest: str
    media_type: str
    size: int
    body: bytes


@dataclass(frozen=True, slots=True)
class PushResult:
    digest: str
    subject: str | None
    created: bool
    tags: tuple[str, ...] = ()


def manifest_context(digest: str) -> bytes:
    return b"manifest:" + digest.encode()


class ManifestService:
    def __init__(self, db: Database, sealer: Sealer) -> None:
        self.db = db
        self.sealer = sealer

    # -- push -------------------------------------------------------------------------------
    async def put(
        self,
        registry_id: str,
        repository: str,
        reference: str,
        body: bytes,
        content_type: str | None,
        extra_tags: tuple[str, ...] = (),
    ) -> PushResult:
        """Store a manifest; ``reference`` is a tag or its digest, ``extra_tags`` come from ``?tag=``."""
        by_digest = is_digest(reference)
        if by_digest:
            wanted = Digest.parse(reference)
            digest = Digest.of(body, wanted.algorithm)
            if digest != wanted:
                raise DigestMismatch(reference, str(digest), "manifest does not match the digest in the URL")
            tags = [check_tag(t) for t in extra_tags]
        else:
            tags = [check_tag(reference), *(check_tag(t) for t in extra_tags)]
            digest = Digest.of(body)
        parsed = parse_manifest(body, content_type)
        sealed = await self.sealer.seal(registry_id, manifest_context(str(digest)), body)

        def work(session: Session) -> PushResult:
            return _store_manifest(session, registry_id, repository, str(digest), parsed, body, sealed, tags)

        return await self.db.write(work)

    # -- pull -------------------------------------------------------------------------------
    async def get(self, registry_id: str, repository: str, reference: str) -> ManifestView | None:
        """The hot path of every pull: one indexed read, no ORM."""
        if is_digest(reference):
            row = await manifests.by_digest(self.db, registry_id, repository, reference)
        else:
            row = await manifests.by_tag(self.db, registry_id, repository, reference)
        return await self._view(registry_id, row)

    async def get_by_digest(self, registry_id: str, repository_id: int, digest: str) -> ManifestView | None:
        return await self._view(registry_id, await manifests.in_repository(self.db, repository_id, digest))

    async def _view(self, registry_id: str, row: StoredManifest | None) -> ManifestView | None:
        if row is None:
            return None
        body = await self._open(registry_id, row.digest, row.body)
        return ManifestView(row.id, row.repository_id, row.digest, row.media_type, row.size, body)

    async def _open(self, registry_id: str, digest: str, sealed: bytes) -> bytes:
        try:
            return await self.sealer.open(registry_id, manifest_context(digest), sealed)
        except IntegrityError as exc:
            raise IntegrityError(f"manifest body: {exc}", digest=digest) from None

    # -- delete -----------------------------------------------------------------------------
    async def delete(self, registry_id: str, repository: str, reference: str) -> bool:
        def work(session: Session) -> bool:
            repo = repositories.find(session, registry_id, repository)
            if repo is None:
                return False
            if not is_digest(reference):
                return manifests.delete_tag(session, repo.id, reference)
            manifest = manifests.find(session, repo.id, reference, lock=True)
            if manifest is None:
                return False
            manifests.delete_manifest(session, manifest)
            if repo.last_manifest_id == manifest.id:
                scans.recompute_last_pushed(session, repo.id)
            add_storage(RawTx.of(session), registry_id, -manifest.size)  # last: see add_storage
            return True

        if is_digest(reference):
            Digest.parse(reference)
        return await self.db.write(work)

    # -- listings ---------------------------------------------------------------------------
    async def tags(
        self, registry_id: str, repository: str, n: int | None, last: str | None
    ) -> list[str] | None:
        """Tags in lexical order strictly after ``last``; None when the repository is unknown."""

        def work(session: Session) -> list[str] | None:
            repo = repositories.find(session, registry_id, repository)
            if repo is None:
                return None
            return manifests.tags_after(session, repo.id, last, n)

        return await self.db.read(work)

    async def referrers(
        self, registry_id: str, repository: str, subject: str, artifact_type: str | None
    ) -> list[dict[str, Any]]:
        descriptors: list[dict[str, Any]] = []
        found = await self.db.read(manifests.referrers, registry_id, repository, subject, artifact_type)
        for row in found:
            body = await self._open(registry_id, row.digest, row.body)
            descriptor: dict[str, Any] = {"mediaType": row.media_type, "digest": row.digest, "size": row.size}
            if row.artifact_type:
                descriptor["artifactType"] = row.artifact_type
            annotations = _annotations(body)
            if annotations:
                descriptor["annotations"] = annotations
            descriptors.append(descriptor)
        return descriptors


def _annotations(body: bytes) -> dict[str, str] | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    value = doc.get("annotations") if isinstance(doc, dict) else None
    return value if isinstance(value, dict) else None


def _store_manifest(
    session: Session,
    registry_id: str,
    repository: str,
    digest: str,
    parsed: ParsedManifest,
    body: bytes,
    sealed: bytes,
    tags: list[str],
) -> PushResult:
    tx = RawTx.of(session)
    repository_id = repositories.ensure_id(tx, registry_id, repository)
    blob_ids = _check_blobs(session, repository_id, parsed)
    _check_children(session, repository_id, parsed)
    if parsed.subject is not None:
        manifests.lock_subject(session, repository_id, str(parsed.subject.digest))
    now = utcnow()
    manifest = manifests.find(session, repository_id, digest, lock=True)
    created = manifest is None
    if manifest is None:
        manifest = Manifest(
            registry_id=registry_id,
            repository_id=repository_id,
            digest=digest,
            media_type=parsed.media_type,
            artifact_type=parsed.referrer_artifact_type,
            subject_digest=str(parsed.subject.digest) if parsed.subject else None,
            size=len(body),
            body=sealed,
            created_at=now,
            pushed_at=now,
            push_count=1,
            pull_count=0,
        )
        manifests.insert(session, manifest, blob_ids, (str(c.digest) for c in parsed.children))
    else:
        manifest.pushed_at = now
        manifest.push_count = manifest.push_count + 1
    applied = tuple(dict.fromkeys(tags))
    for tag in applied:
        manifests.set_tag(session, repository_id, tag, manifest.id, now)
    manifests.count_push(session, repository_id, now)
    scan_jobs.on_push(
        session,
        registry_id,
        repository,
        repository_id,
        manifest.id,
        manifest.scan_status,
        parsed.subject is not None,
    )
    if created:
        session.flush()
        add_storage(tx, registry_id, len(body))  # last: see registries.add_storage
    subject = str(parsed.subject.digest) if parsed.subject else None
    return PushResult(digest, subject, created, applied)


def _check_blobs(session: Session, repository_id: int, parsed: ParsedManifest) -> list[int]:
    found = manifests.linked_blob_ids(session, repository_id, (str(d.digest) for d in parsed.blob_references))
    for descriptor in parsed.blob_references:
        if str(descriptor.digest) not in found:
            raise ManifestBlobUnknown(str(descriptor.digest))
    return list(found.values())


def _check_children(session: Session, repository_id: int, parsed: ParsedManifest) -> None:
    present = manifests.present_digests(session, repository_id, (str(d.digest) for d in parsed.children))
    for child in parsed.children:
        if str(child.digest) not in present:
            raise ManifestChildUnknown(str(child.digest))
