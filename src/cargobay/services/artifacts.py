"""Artifacts (manifests by digest) and their vulnerabilities, as the management API shows them.

No scanner exists yet: vulnerability lists are empty, vulnerability metadata of an artifact is null
(last scan, max severity) or 0 (counts, score), and a vulnerability filter matches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from cargobay.auth.principals import UserPrincipal
from cargobay.db.engine import Database
from cargobay.db.models import Registry
from cargobay.db.queries import artifacts, repositories
from cargobay.db.queries.artifacts import ArtifactRow
from cargobay.db.queries.keyset import Ordering
from cargobay.domain.digests import Digest
from cargobay.domain.errors import InvalidDigest, InvalidInput, NotFound
from cargobay.domain.listing import Page, Position
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
    order: str  # an orderBy key without the sign
    descending: bool
    vulnerability_id: str | None = None
    after: Position | None = None  # the previous page's last row (a keyset seek instead of offset)


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


def _views(registry: Registry, rows: list[ArtifactRow]) -> list[ArtifactView]:
    return [_view(registry, row) for row in rows]


def _view(registry: Registry, row: ArtifactRow) -> ArtifactView:
    return ArtifactView(
        registry_id=registry.id,
        location=registry.location,
        contract_number=registry.contract_number,
        repository_name=row.repository_name,
        digest=row.digest,
        media_type=row.media_type,
        tags=row.tags,
        created_at=row.created_at,
        pushed_at=row.pushed_at,
        pulled_at=row.pulled_at,
        push_count=row.push_count,
        pull_count=row.pull_count,
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
    ) -> Page[ArtifactView]:
        def work(session: Session) -> Page[ArtifactView]:
            registry = visible_registry(session, actor, registry_id)
            if query.vulnerability_id is not None:
                return Page([], False, None)  # no artifact has known vulnerabilities until scanning exists
            rows, keys = artifacts.page_in_registry(
                session, registry_id, _ordering(query), query.offset, query.limit, query.after
            )
            return Page(_views(registry, rows), keys.more, keys.next)

        return await self.db.read(work)

    async def in_repository(
        self, actor: UserPrincipal, registry_id: str, repository: str, query: ArtifactQuery
    ) -> Page[ArtifactView]:
        def work(session: Session) -> Page[ArtifactView]:
            registry = visible_registry(session, actor, registry_id)
            repository_id = _repository_id(session, registry_id, repository)
            rows, keys = artifacts.page_in_repository(
                session, repository_id, _ordering(query), query.offset, query.limit, query.after
            )
            return Page(_views(registry, rows), keys.more, keys.next)

        return await self.db.read(work)

    async def get(self, actor: UserPrincipal, registry_id: str, repository: str, digest: str) -> ArtifactView:
        def work(session: Session) -> ArtifactView:
            registry = visible_registry(session, actor, registry_id)
            repository_id = _repository_id(session, registry_id, repository)
            row = artifacts.by_digest(session, repository_id, digest)
            if row is None:
                raise NotFound(
                    "artifact", digest, f"artifact {digest} not found in repository {repository!r}"
                )
            return _view(registry, row)

        return await self.db.read(work)

    async def vulnerabilities(
        self, actor: UserPrincipal, registry_id: str, repository: str, digest: str, query: VulnerabilityQuery
    ) -> Page[Any]:
        """The artifact's known vulnerabilities: none until scanning exists (404 if no such artifact)."""
        await self.get(actor, registry_id, repository, digest)
        return Page([], False, None)


def _ordering(query: ArtifactQuery) -> Ordering:
    return artifacts.ordering(query.order, query.descending)
