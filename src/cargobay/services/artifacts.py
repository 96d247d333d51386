"""Artifacts (manifests by digest) and their vulnerabilities, as the management API shows them.

An artifact's scan summary (last scan, highest severity, counts, total score) is null until a scan
has a result, never 0: an artifact not scanned yet must not look clean. One that cannot be scanned
(not an image, unreadable, a repository name the scanner refuses) has severity ``unknown`` and no
counts. Its findings come from ``services.vulnerabilities``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from cargobay.auth.principals import UserPrincipal
from cargobay.db.engine import Database
from cargobay.db.models import Registry
from cargobay.db.queries import artifacts, repositories, scans
from cargobay.db.queries.artifacts import ArtifactRow
from cargobay.db.queries.keyset import Ordering
from cargobay.domain.digests import Digest
from cargobay.domain.errors import InvalidDigest, InvalidInput, NotFound
from cargobay.domain.listing import Page, Position
from cargobay.services.ownership import visible_registry
from cargobay.services.scan_results import severity_name
from cargobay.services.scanning import ScanService
from cargobay.services.vulnerabilities import FindingQuery, VulnerabilityService, VulnerabilityView

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
    scanned_at: datetime | None
    max_severity: str | None  # a name of scanning.severity.LEVELS
    total_count: int | None
    fixable_count: int | None
    total_score: float | None


@dataclass(frozen=True, slots=True)
class ScanReport:
    """The scan of one artifact (an extension of the API): state, time, database version, inventory."""

    digest: str
    status: str | None  # None: never queued (scanning off), else scans.PENDING .. scans.SKIPPED
    scanned_at: datetime | None
    database_version: int | None
    operating_system: str | None
    packages: int | None
    max_severity: str | None
    total_count: int | None
    fixable_count: int | None
    total_score: float | None


@dataclass(frozen=True, slots=True)
class ArtifactQuery:
    offset: int
    limit: int
    order: str  # an orderBy key without the sign
    descending: bool
    vulnerability_id: str | None = None
    after: Position | None = None  # the previous page's last row (a keyset seek instead of offset)


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
        scanned_at=row.scanned_at,
        max_severity=severity_name(row.vuln_max_severity),
        total_count=row.vuln_total_count,
        fixable_count=row.vuln_fixable_count,
        total_score=row.vuln_total_score,
    )


def _repository_id(session: Session, registry_id: str, name: str) -> int:
    repository = repositories.find(session, registry_id, name)
    if repository is None:
        raise NotFound("repository", name, f"repository {name!r} not found in registry {registry_id}")
    return repository.id


def _manifest(session: Session, registry_id: str, repository: str, digest: str) -> ArtifactRow:
    row = artifacts.by_digest(session, _repository_id(session, registry_id, repository), digest)
    if row is None:
        raise NotFound("artifact", digest, f"artifact {digest} not found in repository {repository!r}")
    return row


class ArtifactService:
    def __init__(self, db: Database, vulnerabilities: VulnerabilityService, scanner: ScanService) -> None:
        self.db = db
        self.vulnerability_views = vulnerabilities
        self.scanner = scanner

    async def in_registry(
        self, actor: UserPrincipal, registry_id: str, query: ArtifactQuery
    ) -> Page[ArtifactView]:
        def work(session: Session) -> Page[ArtifactView]:
            registry = visible_registry(session, actor, registry_id)
            rows, keys = artifacts.page_in_registry(
                session,
                registry_id,
                _ordering(query),
                query.offset,
                query.limit,
                query.after,
                query.vulnerability_id,
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
            return _view(registry, _manifest(session, registry_id, repository, digest))

        return await self.db.read(work)

    async def vulnerabilities(
        self, actor: UserPrincipal, registry_id: str, repository: str, digest: str, query: FindingQuery
    ) -> Page[VulnerabilityView]:
        """A page of the artifact's findings (none until it is scanned; 404 if no such artifact)."""

        def work(session: Session) -> Page[VulnerabilityView]:
            visible_registry(session, actor, registry_id)
            row = _manifest(session, registry_id, repository, digest)
            items, more = self.vulnerability_views.page(session, row.id, query)
            return Page(items, more)

        return await self.db.read(work)

    async def scan_report(
        self, actor: UserPrincipal, registry_id: str, repository: str, digest: str
    ) -> ScanReport:
        def work(session: Session) -> ScanReport:
            visible_registry(session, actor, registry_id)
            row = _manifest(session, registry_id, repository, digest)
            facts = scans.inventory_facts(session, registry_id, digest)
            state = scans.state(session, row.id)
            return ScanReport(
                digest=digest,
                status=row.scan_status,
                scanned_at=row.scanned_at,
                database_version=state.db_version if state else None,
                operating_system=facts[0] if facts else None,
                packages=facts[1] if facts else None,
                max_severity=severity_name(row.vuln_max_severity),
                total_count=row.vuln_total_count,
                fixable_count=row.vuln_fixable_count,
                total_score=row.vuln_total_score,
            )

        return await self.db.read(work)

    async def sbom(self, actor: UserPrincipal, registry_id: str, repository: str, digest: str) -> str:
        """The artifact's CycloneDX JSON, once its scan and the SBOM job have run (404 before)."""

        def work(session: Session) -> None:
            visible_registry(session, actor, registry_id)
            _manifest(session, registry_id, repository, digest)

        await self.db.read(work)
        text = await self.scanner.sbom(registry_id, digest)
        if text is None:
            raise NotFound("sbom", digest, f"artifact {digest} has no software bill of materials (yet)")
        return text


def _ordering(query: ArtifactQuery) -> Ordering:
    return artifacts.ordering(query.order, query.descending)
