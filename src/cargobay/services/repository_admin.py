"""Repositories as the management API shows them: counters, timestamps, and whole-repository delete."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import false, func, select
from sqlalchemy.orm import Session

from cargobay.auth.principals import UserPrincipal
from cargobay.db.engine import Database, RawTx
from cargobay.db.models import Manifest, Registry, Repository
from cargobay.db.queries import gc, repositories
from cargobay.db.queries.registries import add_storage
from cargobay.domain.errors import InvalidInput, NotFound
from cargobay.domain.names import MAX_REPOSITORY_LENGTH, is_repository_name
from cargobay.services.ownership import require_manager, visible_registry


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
    last_severity: str | None  # filled in by vulnerability scanning (a later issue)


@dataclass(frozen=True, slots=True)
class RepositoryQuery:
    offset: int
    limit: int
    order: str  # name, lastPush, lastPull, artifactCount, pullCount, pushCount
    descending: bool
    name_filter: str | None = None
    severities: frozenset[str] | None = None


def check_repository_name(name: str, field: str = "repositoryName") -> str:
    if not is_repository_name(name):
        raise InvalidInput(
            f"{name[:80]!r} is not a repository name: lower-case components of a-z, 0-9 and "
            f"'.', '_', '-' separated by '/', at most {MAX_REPOSITORY_LENGTH} characters",
            field=field,
        )
    return name


def _artifact_count() -> Any:
    return select(func.count(Manifest.id)).where(Manifest.repository_id == Repository.id).scalar_subquery()


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
        last_severity=None,
    )


class RepositoryAdmin:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(
        self, actor: UserPrincipal, registry_id: str, query: RepositoryQuery
    ) -> tuple[list[RepositoryView], int]:
        def work(session: Session) -> tuple[list[RepositoryView], int]:
            registry = visible_registry(session, actor, registry_id)
            count = _artifact_count().label("artifacts")
            where: list[Any] = [Repository.registry_id == registry_id]
            if query.name_filter:
                escaped = query.name_filter.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                where.append(Repository.name.like(f"%{escaped}%", escape="\\"))
            if query.severities is not None:
                where.append(false())  # nothing is scanned yet, so no repository has a severity
            total = session.scalar(select(func.count()).select_from(Repository).where(*where)) or 0
            column: Any = {
                "name": Repository.name,
                "lastPush": Repository.last_pushed_at,
                "lastPull": Repository.last_pulled_at,
                "artifactCount": count,
                "pullCount": Repository.pull_count,
                "pushCount": Repository.push_count,
            }[query.order]
            ordering = (column.desc() if query.descending else column.asc()).nulls_last()
            rows = session.execute(
                select(Repository, count)
                .where(*where)
                .order_by(ordering, Repository.name)
                .offset(query.offset)
                .limit(query.limit)
            ).all()
            return [_view(registry, r[0], r[1]) for r in rows], int(total)

        return await self.db.read(work)

    async def get(self, actor: UserPrincipal, registry_id: str, name: str) -> RepositoryView:
        def work(session: Session) -> RepositoryView:
            registry = visible_registry(session, actor, registry_id)
            repository = repositories.find(session, registry_id, name)
            if repository is None:
                raise NotFound("repository", name, f"repository {name!r} not found in registry {registry_id}")
            artifacts = session.scalar(
                select(func.count(Manifest.id)).where(Manifest.repository_id == repository.id)
            )
            return _view(registry, repository, int(artifacts or 0))

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
            freed = session.scalar(
                select(func.coalesce(func.sum(Manifest.size), 0)).where(
                    Manifest.repository_id == repository.id
                )
            )
            tx = RawTx.of(session)
            gc.note_repository_blobs(tx, repository.id)  # its blobs are reviewed after the grace period
            session.delete(repository)  # manifests, tags and blob links go by ON DELETE CASCADE
            session.flush()
            add_storage(tx, registry_id, -int(freed or 0))

        await self.db.write(work)
