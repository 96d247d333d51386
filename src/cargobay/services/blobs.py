"""Blobs of a repository: existence, reading, unlinking and cross-repository mounts."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cargobay.db.engine import Database
from cargobay.db.models import Blob, Registry, Repository, RepositoryBlob
from cargobay.db.types import utcnow
from cargobay.services import repositories
from cargobay.storage.base import BlobStore, Chunk


@dataclass(frozen=True, slots=True)
class BlobInfo:
    id: int
    digest: str
    size: int
    object_key: str


def object_key(registry_id: str, object_id: str) -> str:
    return f"{registry_id}/blobs/{object_id[:2]}/{object_id}"


def staged_key(registry_id: str, object_id: str) -> str:
    return f"{registry_id}/uploads/{object_id}"


def _info(blob: Blob) -> BlobInfo:
    return BlobInfo(blob.id, blob.digest, blob.size, blob.object_key)


_IN_REPOSITORY = (
    "SELECT b.id, b.digest, b.size, b.object_key FROM repositories r "
    "JOIN repository_blobs rb ON rb.repository_id = r.id JOIN blobs b ON b.id = rb.blob_id "
    "WHERE r.registry_id = ? AND r.name = ? AND b.registry_id = ? AND b.digest = ?"
)


def link(session: Session, repository_id: int, blob_id: int) -> None:
    if session.get(RepositoryBlob, (repository_id, blob_id)) is None:
        try:
            with session.begin_nested():
                session.add(RepositoryBlob(repository_id=repository_id, blob_id=blob_id))
        except IntegrityError:
            pass


def record_blob(
    session: Session, registry_id: str, repository: str, digest: str, size: int, key: str
) -> tuple[BlobInfo, bool]:
    """Insert the blob row (unless the digest is already stored) and link it into the repository.

    Returns the blob and whether this call created it (so the caller keeps or drops its object).
    """
    repo = repositories.get_or_create(session, registry_id, repository)
    existing = session.scalar(select(Blob).where(Blob.registry_id == registry_id, Blob.digest == digest))
    created = False
    if existing is None:
        try:
            with session.begin_nested():
                existing = Blob(registry_id=registry_id, digest=digest, size=size, object_key=key)
                session.add(existing)
            created = True
        except IntegrityError:
            existing = session.scalar(
                select(Blob).where(Blob.registry_id == registry_id, Blob.digest == digest)
            )
            assert existing is not None
    if created:
        add_storage(session, registry_id, size)
    link(session, repo.id, existing.id)
    return _info(existing), created


def add_storage(session: Session, registry_id: str, delta: int) -> None:
    if delta:
        session.execute(
            update(Registry)
            .where(Registry.id == registry_id)
            .values(storage_bytes=Registry.storage_bytes + delta, storage_updated_at=utcnow())
        )


class BlobService:
    def __init__(self, db: Database, store: BlobStore) -> None:
        self.db = db
        self.store = store

    async def stat(self, registry_id: str, repository: str, digest: str) -> BlobInfo | None:
        """A blob pushed or mounted into the repository (one indexed read, no ORM)."""
        row = await self.db.fetch_one(_IN_REPOSITORY, registry_id, repository, registry_id, digest)
        return BlobInfo(*row) if row is not None else None

    def open(self, blob: BlobInfo, offset: int = 0, length: int | None = None) -> AsyncIterator[Chunk]:
        return self.store.reader(blob.object_key, offset, length)

    async def unlink(self, registry_id: str, repository: str, digest: str) -> bool:
        """Remove the blob from the repository; its bytes are freed by garbage collection."""

        def work(session: Session) -> bool:
            repo = repositories.find(session, registry_id, repository)
            if repo is None:
                return False
            blob_id = session.scalar(
                select(Blob.id).where(Blob.registry_id == registry_id, Blob.digest == digest)
            )
            if blob_id is None:
                return False
            link_row = session.get(RepositoryBlob, (repo.id, blob_id))
            if link_row is None:
                return False
            session.delete(link_row)
            return True

        return await self.db.write(work)

    async def mount(
        self,
        registry_id: str,
        repository: str,
        digest: str,
        source: str | None,
        may_pull: Callable[[str], bool],
    ) -> BlobInfo | None:
        """Link a blob from ``source`` (or, without one, any readable repository) into ``repository``."""

        def work(session: Session) -> BlobInfo | None:
            query = (
                select(Blob, Repository.name)
                .join(RepositoryBlob, RepositoryBlob.blob_id == Blob.id)
                .join(Repository, Repository.id == RepositoryBlob.repository_id)
                .where(Blob.registry_id == registry_id, Blob.digest == digest)
            )
            if source is not None:
                query = query.where(Repository.name == source)
            for blob, repo_name in session.execute(query.limit(100)):
                if may_pull(repo_name):
                    target = repositories.get_or_create(session, registry_id, repository)
                    link(session, target.id, blob.id)
                    return _info(blob)
            return None

        return await self.db.write(work)
