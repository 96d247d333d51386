"""Artifacts (manifests by digest) as the management API lists them: pages in an indexed order, without
the manifest bodies, with their scan summaries and the tags of a page's manifests.

The search by vulnerability id starts from the findings: the manifests with a finding of that id or
alias are two index ranges (``findings.affected_manifests``). Up to ``SEARCH_LIST`` of them, their keys
are read by primary key and the page is cut from them sorted (``keyset.page_of_few``); past that, the
registry's order index is walked and each row checked against the (then dense) set. Either way no
query walks all of a registry's artifacts for a rare vulnerability."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargobay.db.models import Manifest, Repository, Tag
from cargobay.db.queries import keyset
from cargobay.db.queries.findings import affected_manifests
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
    scan_status: str | None = None
    scanned_at: datetime | None = None
    vuln_max_severity: int | None = None  # a rank of scanning.severity.LEVELS
    vuln_total_count: int | None = None
    vuln_fixable_count: int | None = None
    vuln_total_score: float | None = None


# Each key is served by the indexes (repository_id, key, id) of models.py, and by (registry_id, key, id)
# for the keys a registry's list orders by (not vulnMaxSeverity nor vulnTotalScore). The scan keys are
# NULL until an artifact has a result: those sort last.
_KEYS: dict[str, tuple[Any, bool]] = {
    "pullCount": (Manifest.pull_count, False),
    "pushCount": (Manifest.push_count, False),
    "lastPush": (Manifest.pushed_at, False),
    "lastPull": (Manifest.pulled_at, True),
    "lastScan": (Manifest.scanned_at, True),
    "vulnMaxSeverity": (Manifest.vuln_max_severity, True),
    "vulnTotalScore": (Manifest.vuln_total_score, True),
    "vulnTotalCount": (Manifest.vuln_total_count, True),
    "vulnFixableCount": (Manifest.vuln_fixable_count, True),
}


def ordering(order: str, descending: bool) -> Ordering:
    key, nullable = _KEYS[order]
    return Ordering(key, Manifest.id, descending, nullable)


SEARCH_LIST = 1000


def page_in_registry(
    session: Session,
    registry_id: str,
    order: Ordering,
    offset: int,
    limit: int,
    after: Position | None,
    vulnerability_id: str | None = None,
) -> tuple[list[ArtifactRow], Keys]:
    """A page of the registry's artifacts; with ``vulnerability_id``, of those with a finding of that
    id or alias only."""
    scope: list[Any] = [Manifest.registry_id == registry_id]
    if vulnerability_id is None:
        keys = keyset.page(session, scope, order, offset=offset, limit=limit, after=after)
    else:
        hits = affected_manifests(registry_id, vulnerability_id)
        ids = list(session.scalars(hits.limit(SEARCH_LIST + 1)))
        if len(ids) <= SEARCH_LIST:
            # by primary key alone: findings carry their manifest's registry, and a registry_id clause
            # lets a planner prefer walking (registry_id, key, id) and probing each id in the list
            few = [Manifest.id.in_(ids)]
            keys = keyset.page_of_few(session, few, order, offset=offset, limit=limit, after=after)
        else:
            scope.append(Manifest.id.in_(hits))
            keys = keyset.page(session, scope, order, offset=offset, limit=limit, after=after)
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
                Manifest.scan_status,
                Manifest.scanned_at,
                Manifest.vuln_max_severity,
                Manifest.vuln_total_count,
                Manifest.vuln_fixable_count,
                Manifest.vuln_total_score,
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
        scan_status=row.scan_status,
        scanned_at=row.scanned_at,
        vuln_max_severity=row.vuln_max_severity,
        vuln_total_count=row.vuln_total_count,
        vuln_fixable_count=row.vuln_fixable_count,
        vuln_total_score=row.vuln_total_score,
    )
