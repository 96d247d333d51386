"""Manifests and tags: push with reference checks, pull, delete, tag listing, referrers."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from cargobay.db.engine import Database, RawTx
from cargobay.db.models import Blob, Manifest, ManifestBlob, ManifestChild, Repository, RepositoryBlob, Tag
from cargobay.db.types import utcnow
from cargobay.domain.digests import Digest, is_digest
from cargobay.domain.errors import DigestMismatch, ManifestBlobUnknown, ManifestChildUnknown
from cargobay.domain.manifests import ParsedManifest, parse_manifest
from cargobay.domain.names import check_tag
from cargobay.services import repositories
from cargobay.services.blobs import add_storage
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
            row = await self.db.fetch_one(_BY_DIGEST, registry_id, repository, reference)
        else:
            row = await self.db.fetch_one(_BY_TAG, registry_id, repository, reference)
        return await self._view(registry_id, row)

    async def get_by_digest(self, registry_id: str, repository_id: int, digest: str) -> ManifestView | None:
        return await self._view(registry_id, await self.db.fetch_one(_IN_REPOSITORY, repository_id, digest))

    async def _view(self, registry_id: str, row: tuple[Any, ...] | None) -> ManifestView | None:
        if row is None:
            return None
        manifest_id, repository_id, digest, media_type, size, sealed = row
        body = await self._open(registry_id, digest, bytes(sealed))
        return ManifestView(manifest_id, repository_id, digest, media_type, size, body)

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
                result = session.execute(
                    delete(Tag).where(Tag.repository_id == repo.id, Tag.name == reference)
                )
                return bool(result.rowcount)  # type: ignore[attr-defined]
            manifest = session.scalar(
                select(Manifest).where(Manifest.repository_id == repo.id, Manifest.digest == reference)
            )
            if manifest is None:
                return False
            session.execute(delete(Tag).where(Tag.manifest_id == manifest.id))
            session.execute(delete(ManifestBlob).where(ManifestBlob.manifest_id == manifest.id))
            session.execute(delete(ManifestChild).where(ManifestChild.manifest_id == manifest.id))
            session.delete(manifest)
            add_storage(RawTx.of(session), registry_id, -manifest.size)
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
            query = select(Tag.name).where(Tag.repository_id == repo.id).order_by(Tag.name)
            if last is not None:
                query = query.where(Tag.name > last)
            if n is not None:
                query = query.limit(n)
            return list(session.scalars(query))

        return await self.db.read(work)

    async def referrers(
        self, registry_id: str, repository: str, subject: str, artifact_type: str | None
    ) -> list[dict[str, Any]]:
        def work(session: Session) -> list[Manifest]:
            query = (
                select(Manifest)
                .join(Repository, Repository.id == Manifest.repository_id)
                .where(
                    Repository.registry_id == registry_id,
                    Repository.name == repository,
                    Manifest.subject_digest == subject,
                )
                .order_by(Manifest.id)
            )
            if artifact_type is not None:
                query = query.where(Manifest.artifact_type == artifact_type)
            return list(session.scalars(query))

        descriptors: list[dict[str, Any]] = []
        for row in await self.db.read(work):
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


_COLUMNS = "m.id, m.repository_id, m.digest, m.media_type, m.size, m.body"
_BY_TAG = (
    f"SELECT {_COLUMNS} FROM repositories r JOIN tags t ON t.repository_id = r.id "
    "JOIN manifests m ON m.id = t.manifest_id WHERE r.registry_id = ? AND r.name = ? AND t.name = ?"
)
_BY_DIGEST = (
    f"SELECT {_COLUMNS} FROM repositories r JOIN manifests m ON m.repository_id = r.id "
    "WHERE r.registry_id = ? AND r.name = ? AND m.digest = ?"
)
_IN_REPOSITORY = f"SELECT {_COLUMNS} FROM manifests m WHERE m.repository_id = ? AND m.digest = ?"


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
    now = utcnow()
    manifest = session.scalar(
        select(Manifest).where(Manifest.repository_id == repository_id, Manifest.digest == digest)
    )
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
        session.add(manifest)
        session.flush()
        for blob_id in sorted(set(blob_ids)):
            session.add(ManifestBlob(manifest_id=manifest.id, blob_id=blob_id))
        for child in sorted({str(c.digest) for c in parsed.children}):
            session.add(ManifestChild(manifest_id=manifest.id, child_digest=child))
        add_storage(tx, registry_id, len(body))
    else:
        manifest.pushed_at = now
        manifest.push_count = manifest.push_count + 1
    applied = tuple(dict.fromkeys(tags))
    for tag in applied:
        existing = session.get(Tag, (repository_id, tag))
        if existing is None:
            session.add(Tag(repository_id=repository_id, name=tag, manifest_id=manifest.id, updated_at=now))
        else:
            existing.manifest_id = manifest.id
            existing.updated_at = now
    session.execute(
        update(Repository)
        .where(Repository.id == repository_id)
        .values(push_count=Repository.push_count + 1, last_pushed_at=now)
    )
    subject = str(parsed.subject.digest) if parsed.subject else None
    return PushResult(digest, subject, created, applied)


def _check_blobs(session: Session, repository_id: int, parsed: ParsedManifest) -> list[int]:
    wanted = {str(d.digest) for d in parsed.blob_references}
    if not wanted:
        return []
    rows = session.execute(
        select(Blob.digest, Blob.id)
        .join(RepositoryBlob, RepositoryBlob.blob_id == Blob.id)
        .where(RepositoryBlob.repository_id == repository_id, Blob.digest.in_(wanted))
    ).all()
    found = {r[0]: r[1] for r in rows}
    for descriptor in parsed.blob_references:
        if str(descriptor.digest) not in found:
            raise ManifestBlobUnknown(str(descriptor.digest))
    return list(found.values())


def _check_children(session: Session, repository_id: int, parsed: ParsedManifest) -> None:
    wanted = {str(d.digest) for d in parsed.children}
    if not wanted:
        return
    present = set(
        session.scalars(
            select(Manifest.digest).where(
                Manifest.repository_id == repository_id, Manifest.digest.in_(wanted)
            )
        )
    )
    for child in parsed.children:
        if str(child.digest) not in present:
            raise ManifestChildUnknown(str(child.digest))
