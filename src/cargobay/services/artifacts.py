"""Artifacts (manifests by digest) and their vulnerabilities, as the management API shows them.

No scanner exists yet: vulnerability lists are empty, vulnerability metadata of an artifact is null
(last scan, max severity) or 0 (counts, score), and a vulnerability filter matches nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cargobay.auth.principals import UserPrincipal
from cargobay.db.engine import Database
from cargobay.db.models import Manifest, Registry, Repository, Tag
from cargobay.db.queries import repositories
from cargobay.domain.digests import Digest
from cargobay.domain.errors import InvalidDigest, InvalidInput, NotFound
from cargobay.services.ownership import visible_registry

MAX_VULNERABILITY_ID = 64


@dataclass(frozen=True, slots=True)
class ArtifactView:
    registry_id: str
    location: str
    contract_number: int
    repository_name: str
    digest: str
    media_type: str
    tags: tuple[str, ...]
    created_at: datetime
    pushed_at: datetime
    pulled_at: datetime | None
    push_count: int
    pull_count: int


@dataclass(frozen=True, slots=True)
class ArtifactQuery:
    offset: int
    limit: int
    order: str  # a key of _ORDER (without the sign)
    descending: bool
    vulnerability_id: str | None = None


@dataclass(frozen=True, slots=True)
class VulnerabilityQuery:
    offset: int
    limit: int
    order: str
    descending: bool
    severities: frozenset[str] | None = None
    fixable: bool | None = None


def check_digest(value: str, field: str = "digest") -> str:
    try:
        return str(Digest.parse(value))
    except InvalidDigest:
        raise InvalidInput(
            f"{value[:80]!r} is not a digest: sha256:<64 hex> or sha512:<128 hex>", field=field
        ) from None


def check_vulnerability_id(value: str, field: str) -> str:
    text = value
    if not text or len(text) > MAX_VULNERABILITY_ID:
        raise InvalidInput(
            f"must be an advisory id (e.g. CVE-2021-44228) of 1-{MAX_VULNERABILITY_ID} characters",
            field=field,
        )
    return text


# Orderings on data that exists; scan-based keys (lastScan, vuln*) have no data yet and keep push order.
_ORDER: dict[str, Any] = {
    "pullCount": Manifest.pull_count,
    "pushCount": Manifest.push_count,
    "lastPush": Manifest.pushed_at,
    "lastPull": Manifest.pulled_at,
}


def _page(
    session: Session, registry: Registry, where: list[Any], query: ArtifactQuery
) -> tuple[list[ArtifactView], int]:
    if query.vulnerability_id is not None:
        return [], 0  # no artifact has known vulnerabilities until scanning exists
    total = session.scalar(
        select(func.count(Manifest.id))
        .join(Repository, Repository.id == Manifest.repository_id)
        .where(*where)
    )
    column = _ORDER.get(query.order)
    ordering: list[Any] = []
    if column is not None:
        ordering.append((column.desc() if query.descending else column.asc()).nulls_last())
    ordering.append(Manifest.id.desc() if column is None and query.descending else Manifest.id.asc())
    rows = session.execute(
        select(Manifest, Repository.name)
        .join(Repository, Repository.id == Manifest.repository_id)
        .where(*where)
        .order_by(*ordering)
        .offset(query.offset)
        .limit(query.limit)
    ).all()
    tags = _tags(session, [r[0].id for r in rows])
    return [_view(registry, r[0], r[1], tags.get(r[0].id, ())) for r in rows], int(total or 0)


def _tags(session: Session, manifest_ids: list[int]) -> dict[int, tuple[str, ...]]:
    if not manifest_ids:
        return {}
    found: dict[int, list[str]] = defaultdict(list)
    for manifest_id, name in session.execute(
        select(Tag.manifest_id, Tag.name).where(Tag.manifest_id.in_(manifest_ids)).order_by(Tag.name)
    ):
        found[manifest_id].append(name)
    return {k: tuple(v) for k, v in found.items()}


def _view(registry: Registry, row: Manifest, repository: str, tags: tuple[str, ...]) -> ArtifactView:
    return ArtifactView(
        registry_id=registry.id,
        location=registry.location,
        contract_number=registry.contract_number,
        repository_name=repository,
        digest=row.digest,
        media_type=row.media_type,
        tags=tags,
        created_at=row.created_at,
        pushed_at=row.pushed_at,
        pulled_at=row.pulled_at,
        push_count=int(row.push_count),
        pull_count=int(row.pull_count),
    )


def _repository_id(session: Session, registry_id: str, name: str) -> int:
    repository = repositories.find(session, registry_id, name)
    if repository is None:
        raise NotFound("repository", name, f"repository {name!r} not found in registry {registry_id}")
    return repository.id


class ArtifactService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def in_registry(
        self, actor: UserPrincipal, registry_id: str, query: ArtifactQuery
    ) -> tuple[list[ArtifactView], int]:
        def work(session: Session) -> tuple[list[ArtifactView], int]:
            registry = visible_registry(session, actor, registry_id)
            return _page(session, registry, [Repository.registry_id == registry_id], query)

        return await self.db.read(work)

    async def in_repository(
        self, actor: UserPrincipal, registry_id: str, repository: str, query: ArtifactQuery
    ) -> tuple[list[ArtifactView], int]:
        def work(session: Session) -> tuple[list[ArtifactView], int]:
            registry = visible_registry(session, actor, registry_id)
            repository_id = _repository_id(session, registry_id, repository)
            return _page(session, registry, [Manifest.repository_id == repository_id], query)

        return await self.db.read(work)

    async def get(self, actor: UserPrincipal, registry_id: str, repository: str, digest: str) -> ArtifactView:
        def work(session: Session) -> ArtifactView:
            registry = visible_registry(session, actor, registry_id)
            repository_id = _repository_id(session, registry_id, repository)
            row = session.scalar(
                select(Manifest).where(Manifest.repository_id == repository_id, Manifest.digest == digest)
            )
            if row is None:
                raise NotFound(
                    "artifact", digest, f"artifact {digest} not found in repository {repository!r}"
                )
            return _view(registry, row, repository, _tags(session, [row.id]).get(row.id, ()))

        return await self.db.read(work)

    async def vulnerabilities(
        self, actor: UserPrincipal, registry_id: str, repository: str, digest: str, query: VulnerabilityQuery
    ) -> tuple[list[Any], int]:
        """The artifact's known vulnerabilities: none until scanning exists (404 if no such artifact)."""
        await self.get(actor, registry_id, repository, digest)
        return [], 0
