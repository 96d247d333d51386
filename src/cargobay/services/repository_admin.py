"""Repositories as the management API shows them: counters, timestamps, and whole-repository delete."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from cargobay.auth.principals import UserPrincipal
from cargobay.db.engine import Database, RawTx
from cargobay.db.models import Registry, Repository
from cargobay.db.queries import gc, repositories
from cargobay.db.queries.registries import add_storage
from cargobay.domain.errors import InvalidInput, NotFound
from cargobay.domain.listing import Page, Position
from cargobay.domain.names import MAX_REPOSITORY_LENGTH, is_repository_name
from cargobay.services.ownership import require_manager, visible_registry
from cargobay.services.scan_results import severity_name
from cargobay.services.vulnerabilities import severity_ranks


@dataclass(frozen=True, slots=True)
class RepositoryView:
    registry_id: str
    location: str
    contract_number: int
    name: str
    created_at: datetime
    artifact_count: int
    pull_count: int
    push_count: int
    last_pulled_at: datetime | None
    last_pushed_at: datetime | None
    last_severity: str | None  # of the last pushed artifact; None until that artifact has a result


@dataclass(frozen=True, slots=True)
class RepositoryQuery:
    offset: int
    limit: int
    order: str  # name, lastPush, lastPull, artifactCount, pullCount, pushCount
    descending: bool
    name_filter: str | None = None
    severities: frozenset[str] | None = None
    after: Position | None = None  # the previous page's last row (a keyset seek instead of offset)


def check_repository_name(name: str, field: str = "repositoryName") -> str:
    if not is_repository_name(name):
        raise InvalidInput(
            f"{name[:80]!r} is not a repository name: lower-case components of a-z, 0-9 and "
            f"'.', '_', '-' separated by '/', at most {MAX_REPOSITORY_LENGTH} characters",
            field=field,
        )
    return name


def _view(registry: Registry, row: Repository, artifacts: int) -> RepositoryView:
    return RepositoryView(
        registry_id=registry.id,
        location=registry.location,
        contract_number=registry.contract_number,
        name=row.name,
        created_at=row.created_at,
        artifact_count=int(artifacts),
        pull_count=int(row.pull_count),
        push_count=int(row.push_count),
        last_pulled_at=row.last_pulled_at,
        last_pushed_at=row.last_pushed_at,
        last_severity=severity_name(row.last_severity),
    )


class RepositoryAdmin:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(
        self, actor: UserPrincipal, registry_id: str, query: RepositoryQuery
    ) -> Page[RepositoryView]:
        def work(session: Session) -> Page[RepositoryView]:
            registry = visible_registry(session, actor, registry_id)
            rows, keys = repositories.page(
                session,
                registry_id,
                query.order,
                query.descending,
                name_filter=query.name_filter,
                severities=severity_ranks(query.severities, "filter.vulnerabilitySeverity"),
                offset=query.offset,
                limit=query.limit,
                after=query.after,
            )
            return Page([_view(registry, row, count) for row, count in rows], keys.more, keys.next)

        return await self.db.read(work)

    async def get(self, actor: UserPrincipal, registry_id: str, name: str) -> RepositoryView:
        def work(session: Session) -> RepositoryView:
            registry = visible_registry(session, actor, registry_id)
            repository = repositories.find(session, registry_id, name)
            if repository is None:
                raise NotFound("repository", name, f"repository {name!r} not found in registry {registry_id}")
            counts = repositories.artifact_counts(session, [repository.id])
            return _view(registry, repository, counts.get(repository.id, 0))

        return await self.db.read(work)

    async def delete(self, actor: UserPrincipal, registry_id: str, name: str) -> None:
        """Remove the repository with its manifests and tags at once; blobs are freed later by GC.

        The registry's storage usage drops by the manifests' sizes right away, and by the blobs' sizes
        when garbage collection deletes those no other repository's manifest references.
        """

        def work(session: Session) -> None:
            visible_registry(session, actor, registry_id)
            require_manager(actor, "delete repositories")
            # Locked first, before anything else: writers to it hold it for share from their start.
            repository = repositories.find(session, registry_id, name, lock=True)
            if repository is None:
                raise NotFound("repository", name, f"repository {name!r} not found in registry {registry_id}")
            tx = RawTx.of(session)
            gc.note_repository_blobs(tx, repository.id)  # its blobs are reviewed after the grace period
            freed = repositories.delete_manifests(tx, repository.id)
            repositories.delete(session, repository)  # tags and blob links go by ON DELETE CASCADE
            add_storage(tx, registry_id, -freed)

        await self.db.write(work)
