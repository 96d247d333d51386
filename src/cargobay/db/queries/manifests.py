"""Manifests, their tags, and what they reference (blobs, child manifests, a subject)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cargobay.db.engine import Database, RawTx
from cargobay.db.models import Blob, Manifest, ManifestBlob, ManifestChild, Repository, RepositoryBlob, Tag
from cargobay.db.queries import gc


@dataclass(frozen=True, slots=True)
class StoredManifest:
    """A manifest row as the pull path reads it; ``body`` is as stored (sealed when encryption is on)."""

    id: int
    repository_id: int
    digest: str
    media_type: str
    size: int
    body: bytes


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


def _stored(row: tuple[Any, ...] | None) -> StoredManifest | None:
    if row is None:
        return None
    manifest_id, repository_id, digest, media_type, size, body = row
    return StoredManifest(manifest_id, repository_id, digest, media_type, size, bytes(body))


async def by_tag(db: Database, registry_id: str, repository: str, tag: str) -> StoredManifest | None:
    """The hot path of every pull by tag: one indexed read."""
    return _stored(await db.fetch_one(_BY_TAG, registry_id, repository, tag))


async def by_digest(db: Database, registry_id: str, repository: str, digest: str) -> StoredManifest | None:
    return _stored(await db.fetch_one(_BY_DIGEST, registry_id, repository, digest))


async def in_repository(db: Database, repository_id: int, digest: str) -> StoredManifest | None:
    return _stored(await db.fetch_one(_IN_REPOSITORY, repository_id, digest))


def find(session: Session, repository_id: int, digest: str, *, lock: bool = False) -> Manifest | None:
    """The manifest; with ``lock`` (PostgreSQL) held until the transaction ends, so garbage
    collection skips it, or has deleted it and this finds nothing."""
    query = select(Manifest).where(Manifest.repository_id == repository_id, Manifest.digest == digest)
    return session.scalar(query.with_for_update() if lock else query)


def linked_blob_ids(session: Session, repository_id: int, digests: Iterable[str]) -> dict[str, int]:
    """Of ``digests``, the blobs linked into the repository: digest -> blob id. The blobs are locked
    for share (PostgreSQL) until the transaction ends: a collection skips them, or deleted them first."""
    wanted = set(digests)
    if not wanted:
        return {}
    rows = session.execute(
        select(Blob.digest, Blob.id)
        .join(RepositoryBlob, RepositoryBlob.blob_id == Blob.id)
        .where(RepositoryBlob.repository_id == repository_id, Blob.digest.in_(wanted))
        .with_for_update(read=True, of=Blob)
    )
    return {r[0]: r[1] for r in rows}


def present_digests(session: Session, repository_id: int, digests: Iterable[str]) -> set[str]:
    """Of ``digests``, the manifests the repository holds (locked for share, as above)."""
    wanted = set(digests)
    if not wanted:
        return set()
    return set(
        session.scalars(
            select(Manifest.digest)
            .where(Manifest.repository_id == repository_id, Manifest.digest.in_(wanted))
            .with_for_update(read=True)
        )
    )


def insert(
    session: Session, manifest: Manifest, blob_ids: Iterable[int], children: Iterable[str]
) -> Manifest:
    """Store a new manifest with its references to blobs and child manifests.

    The manifest is queued for review (it may stay untagged), and reviews already queued for its
    blobs start their grace period again.
    """
    session.add(manifest)
    session.flush()
    blobs = sorted(set(blob_ids))
    for blob_id in blobs:
        session.add(ManifestBlob(manifest_id=manifest.id, blob_id=blob_id))
    for child in sorted(set(children)):
        session.add(ManifestChild(manifest_id=manifest.id, child_digest=child))
    tx = RawTx.of(session)
    gc.note_manifests(tx, [manifest.id])
    gc.postpone_blob_reviews(tx, blobs)
    return manifest


def lock_subject(session: Session, repository_id: int, digest: str) -> None:
    """A referrer is being pushed: keep its subject from collection until the transaction ends."""
    tx = RawTx.of(session)
    tx.one(
        f"SELECT id FROM manifests WHERE repository_id = ? AND digest = ?{gc.share_lock(tx)}",
        repository_id,
        digest,
    )


def set_tag(session: Session, repository_id: int, tag: str, manifest_id: int, now: datetime) -> None:
    """Point the tag at the manifest; a manifest the tag leaves is queued for review.

    Two pushes of a tag nobody had yet may run at once (on PostgreSQL neither finds a row to lock):
    one inserts it, the other's insert waits for that one to commit, does nothing, and then moves
    the tag it now finds, as if it had come second.
    """
    existing = session.get(Tag, (repository_id, tag), with_for_update=True)
    if existing is None:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        added = session.execute(
            insert(Tag)
            .values(repository_id=repository_id, name=tag, manifest_id=manifest_id, updated_at=now)
            .on_conflict_do_nothing(index_elements=[Tag.repository_id, Tag.name])
        )
        if getattr(added, "rowcount", 1) == 1:
            return
        existing = session.get(Tag, (repository_id, tag), with_for_update=True, populate_existing=True)
        if existing is None:  # inserted and deleted again meanwhile: add it after all
            session.add(Tag(repository_id=repository_id, name=tag, manifest_id=manifest_id, updated_at=now))
            return
    if existing.manifest_id != manifest_id:
        gc.note_manifests(RawTx.of(session), [existing.manifest_id], now)
    existing.manifest_id = manifest_id
    existing.updated_at = now


def count_push(session: Session, repository_id: int, now: datetime) -> None:
    session.execute(
        update(Repository)
        .where(Repository.id == repository_id)
        .values(push_count=Repository.push_count + 1, last_pushed_at=now)
    )


def delete_tag(session: Session, repository_id: int, tag: str) -> bool:
    """Remove the tag; the manifest it pointed at is queued for review."""
    tagged = session.scalar(
        select(Tag.manifest_id).where(Tag.repository_id == repository_id, Tag.name == tag)
    )
    if tagged is None:
        return False
    result = session.execute(delete(Tag).where(Tag.repository_id == repository_id, Tag.name == tag))
    gc.note_manifests(RawTx.of(session), [tagged])
    return bool(result.rowcount)  # type: ignore[attr-defined]


def delete_manifest(session: Session, manifest: Manifest) -> None:
    """The manifest with its tags and references (bytes of blobs are garbage collection's): its
    blobs, children, subject and referrers are queued for review."""
    gc.note_manifest_removal(
        RawTx.of(session), manifest.id, manifest.repository_id, manifest.digest, manifest.subject_digest
    )
    session.execute(delete(Tag).where(Tag.manifest_id == manifest.id))
    session.execute(delete(ManifestBlob).where(ManifestBlob.manifest_id == manifest.id))
    session.execute(delete(ManifestChild).where(ManifestChild.manifest_id == manifest.id))
    session.delete(manifest)


def tags_after(session: Session, repository_id: int, last: str | None, limit: int | None) -> list[str]:
    """Tags in lexical order strictly after ``last``."""
    query = select(Tag.name).where(Tag.repository_id == repository_id).order_by(Tag.name)
    if last is not None:
        query = query.where(Tag.name > last)
    if limit is not None:
        query = query.limit(limit)
    return list(session.scalars(query))


def referrers(
    session: Session, registry_id: str, repository: str, subject: str, artifact_type: str | None
) -> list[Manifest]:
    """Manifests of the repository whose subject is ``subject`` (indexed), oldest first."""
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


def add_pulls(
    session: Session,
    manifests: dict[int, tuple[int, datetime]],
    repositories: dict[int, tuple[int, datetime]],
) -> None:
    """Count pulls (``id -> (count, last pulled at)``) with ``x = x + n``: flushes may overlap."""
    for manifest_id, (count, at) in manifests.items():
        session.execute(
            update(Manifest)
            .where(Manifest.id == manifest_id)
            .values(pull_count=Manifest.pull_count + count, pulled_at=at)
        )
    for repository_id, (count, at) in repositories.items():
        session.execute(
            update(Repository)
            .where(Repository.id == repository_id)
            .values(pull_count=Repository.pull_count + count, last_pulled_at=at)
        )


def bodies_after(session: Session, last_id: int, limit: int) -> list[tuple[int, str, str, bytes]]:
    """(id, registry, digest, stored body) of manifests after ``last_id``, in id order."""
    rows = session.execute(
        select(Manifest.id, Manifest.registry_id, Manifest.digest, Manifest.body)
        .where(Manifest.id > last_id)
        .order_by(Manifest.id)
        .limit(limit)
    )
    return [(r[0], r[1], r[2], r[3]) for r in rows]


def replace_body(session: Session, manifest_id: int, old: bytes, sealed: bytes) -> None:
    """Store a sealed body in place of the plaintext one, unless it changed meanwhile."""
    session.execute(
        update(Manifest).where(Manifest.id == manifest_id, Manifest.body == old).values(body=sealed)
    )
