"""Artifacts (manifests by digest) as the management API lists them: pages in an indexed order, without
the manifest bodies, and the tags of a page's manifests."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargobay.db.models import Manifest, Repository, Tag
from cargobay.db.queries import keyset
from cargobay.db.queries.keyset import Keys, Ordering
from cargobay.domain.listing import Position


@dataclass(frozen=True, slots=True)
class ArtifactRow:
    id: int
    repository_name: str
    digest: str
    media_type: str
    created_at: datetime
    pushed_at: datetime
    pulled_at: datetime | None
    push_count: int
    pull_count: int
    tags: tuple[str, ...]


# Each key is served by the indexes (registry_id, key, id) and (repository_id, key, id) of models.py.
_KEYS: dict[str, tuple[Any, bool]] = {
    "pullCount": (Manifest.pull_count, False),
    "pushCount": (Manifest.push_count, False),
    "lastPush": (Manifest.pushed_at, False),
    "lastPull": (Manifest.pulled_at, True),
}


def ordering(order: str, descending: bool) -> Ordering:
    """Orders on data that exists; the scan-based keys (lastScan, vuln*) have no data yet: id order."""
    key, nullable = _KEYS.get(order, (Manifest.id, False))
    return Ordering(key, Manifest.id, descending, nullable)


def page_in_registry(
    session: Session, registry_id: str, order: Ordering, offset: int, limit: int, after: Position | None
) -> tuple[list[ArtifactRow], Keys]:
    keys = keyset.page(
        session, [Manifest.registry_id == registry_id], order, offset=offset, limit=limit, after=after
    )
    return by_ids(session, [row[1] for row in keys.rows]), keys


def page_in_repository(
    session: Session, repository_id: int, order: Ordering, offset: int, limit: int, after: Position | None
) -> tuple[list[ArtifactRow], Keys]:
    keys = keyset.page(
        session, [Manifest.repository_id == repository_id], order, offset=offset, limit=limit, after=after
    )
    return by_ids(session, [row[1] for row in keys.rows]), keys


def by_ids(session: Session, ids: list[int]) -> list[ArtifactRow]:
    """The rows of ``ids`` in that order (one indexed read for the rows, one for their tags)."""
    if not ids:
        return []
    found = {
        row.id: row
        for row in session.execute(
            select(
                Manifest.id,
                Repository.name,
                Manifest.digest,
                Manifest.media_type,
                Manifest.created_at,
                Manifest.pushed_at,
                Manifest.pulled_at,
                Manifest.push_count,
                Manifest.pull_count,
            )
            .join(Repository, Repository.id == Manifest.repository_id)
            .where(Manifest.id.in_(ids))
        )
    }
    tags = tags_of(session, ids)
    return [_row(found[i], tags.get(i, ())) for i in ids if i in found]


def by_digest(session: Session, repository_id: int, digest: str) -> ArtifactRow | None:
    manifest_id = session.scalar(
        select(Manifest.id).where(Manifest.repository_id == repository_id, Manifest.digest == digest)
    )
    if manifest_id is None:
        return None
    rows = by_ids(session, [manifest_id])
    return rows[0] if rows else None


def tags_of(session: Session, manifest_ids: list[int]) -> dict[int, tuple[str, ...]]:
    if not manifest_ids:
        return {}
    found: dict[int, list[str]] = defaultdict(list)
    for manifest_id, name in session.execute(
        select(Tag.manifest_id, Tag.name).where(Tag.manifest_id.in_(manifest_ids)).order_by(Tag.name)
    ):
        found[manifest_id].append(name)
    return {k: tuple(v) for k, v in found.items()}


def _row(row: Any, tags: tuple[str, ...]) -> ArtifactRow:
    return ArtifactRow(
        id=row.id,
        repository_name=row.name,
        digest=row.digest,
        media_type=row.media_type,
        created_at=row.created_at,
        pushed_at=row.pushed_at,
        pulled_at=row.pulled_at,
        push_count=int(row.push_count),
        pull_count=int(row.pull_count),
        tags=tags,
    )
