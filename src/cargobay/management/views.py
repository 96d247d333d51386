"""Service views -> wire models (hrefs, hostnames, id/type constants, the password rule)."""

from __future__ import annotations

from starlette.requests import Request

from cargobay.management.context import Management
from cargobay.management.schemas.common import ApiResourceMetadata
from cargobay.management.schemas.content import (
    Artifact,
    ArtifactMetadata,
    ArtifactRead,
    Purl,
    Repository,
    RepositoryMetadata,
    RepositoryRead,
    Vulnerability,
    VulnerabilityDataSource,
    VulnerabilityMetadata,
    VulnerabilityRead,
)
from cargobay.management.schemas.gc import (
    GarbageCollectionProgress,
    GarbageCollectionRun,
    GarbageCollectionRunRead,
)
from cargobay.management.schemas.registries import (
    FeatureVulnerabilityScanning,
    RegistryFeatures,
    RegistryProperties,
    RegistryResponse,
    StorageUsage,
    WeeklySchedule,
)
from cargobay.management.schemas.tokens import Credentials, Scope, TokenProperties, TokenResponse
from cargobay.services.artifacts import ArtifactView
from cargobay.services.gc_runs import RunView
from cargobay.services.registries import hostname
from cargobay.services.registry_admin import RegistryView
from cargobay.services.repository_admin import RepositoryView
from cargobay.services.tokens import TokenView
from cargobay.services.vulnerabilities import VulnerabilityView


def registry(m: Management, request: Request, view: RegistryView) -> RegistryResponse:
    host = (
        "" if view.state == "New" else hostname(view.name, m.settings.registry_domain, m.public_host(request))
    )
    return RegistryResponse(
        id=view.id,
        href=m.href(request, "registries", view.id),
        metadata=ApiResourceMetadata(
            createdBy=view.created_by,
            createdByUserId=view.created_by_user_id,
            createdDate=view.created_at,
            lastModifiedBy=view.modified_by,
            lastModifiedByUserId=view.modified_by_user_id,
            lastModifiedDate=view.modified_at,
            state=view.state,
        ),
        properties=RegistryProperties(
            name=view.name,
            location=view.location,
            hostname=host,
            garbageCollectionSchedule=(
                WeeklySchedule.model_validate({"days": list(view.schedule.days), "time": view.schedule.time})
                if view.schedule is not None
                else None
            ),
            storageUsage=StorageUsage(bytes=view.storage_bytes, updatedAt=view.storage_updated_at),
            features=RegistryFeatures(
                vulnerabilityScanning=FeatureVulnerabilityScanning(enabled=view.vulnerability_scanning)
            ),
            apiSubnetAllowList=list(view.allowlist),
        ),
    )


def token(m: Management, request: Request, view: TokenView) -> TokenResponse:
    return TokenResponse(
        id=view.id,
        href=m.href(request, "registries", view.registry_id, "tokens", view.id),
        metadata=ApiResourceMetadata(
            createdBy=view.created_by,
            createdByUserId=view.created_by_user_id,
            createdDate=view.created_at,
            lastModifiedBy=view.modified_by,
            lastModifiedByUserId=view.modified_by_user_id,
            lastModifiedDate=view.modified_at,
            state=view.status,
        ),
        properties=TokenProperties(
            name=view.name,
            credentials=Credentials(username=view.name, password=view.password),
            expiryDate=view.expiry_date,
            scopes=[Scope(**s.as_json()) for s in view.scopes],
            status=view.status,
        ),
    )


def urn(contract: int, location: str, *path: str) -> str:
    """``ionos:containerregistry:<location>:<contract>:<path>`` (the documented URN pattern)."""
    return f"ionos:containerregistry:{location}:{contract}:{'/'.join(path)}"


def repository(m: Management, request: Request, view: RepositoryView) -> RepositoryRead:
    return RepositoryRead(
        id=view.name,
        href=m.href(request, "registries", view.registry_id, "repositories", view.name),
        metadata=RepositoryMetadata(
            createdDate=view.created_at,
            resourceURN=urn(
                view.contract_number, view.location, "registries", view.registry_id, "repositories", view.name
            ),
            artifactCount=view.artifact_count,
            pullCount=view.pull_count,
            pushCount=view.push_count,
            lastPulledAt=view.last_pulled_at,
            lastPushedAt=view.last_pushed_at,
            lastSeverity=view.last_severity,
        ),
        properties=Repository(name=view.name),
    )


def artifact(m: Management, request: Request, view: ArtifactView) -> ArtifactRead:
    path = ("registries", view.registry_id, "repositories", view.repository_name, "artifacts", view.digest)
    return ArtifactRead(
        id=view.digest,
        href=m.href(request, *path),
        metadata=ArtifactMetadata(
            createdDate=view.created_at,
            resourceURN=urn(view.contract_number, view.location, *path),
            lastPushedAt=view.pushed_at,
            lastPulledAt=view.pulled_at,
            lastScannedAt=view.scanned_at,
            pushCount=view.push_count,
            pullCount=view.pull_count,
            vulnMaxSeverity=view.max_severity,
            vulnTotalScore=view.total_score,
            vulnTotalCount=view.total_count,
            vulnFixableCount=view.fixable_count,
        ),
        properties=Artifact(
            repositoryName=view.repository_name,
            digest=view.digest,
            tags=list(view.tags),
            mediaType=view.media_type,
        ),
    )


def vulnerability(m: Management, request: Request, view: VulnerabilityView) -> VulnerabilityRead:
    """An advisory, or a finding of an artifact (``affects`` then names the installed versions)."""
    return VulnerabilityRead(
        id=view.id,
        href=m.href(request, "vulnerabilities", view.id),
        metadata=VulnerabilityMetadata(
            publishedAt=view.published_at or view.updated_at, updatedAt=view.updated_at
        ),
        properties=Vulnerability(
            description=view.description,
            recommendations=view.recommendations or None,
            dataSource=VulnerabilityDataSource(id=view.data_source, url=view.data_source_url or None),
            fixable=view.fixable,
            affects=[Purl(type=a.type, name=a.name, version=a.version) for a in view.affects],
            references=list(view.references),
            severity=view.severity,
            score=view.score,
        ),
    )


def gc_run(m: Management, request: Request, registry_id: str, view: RunView) -> GarbageCollectionRunRead:
    return GarbageCollectionRunRead(
        id=str(view.id),
        href=m.href(request, "registries", registry_id, "garbageCollection", "runs", str(view.id)),
        properties=GarbageCollectionRun(
            state=view.state,
            trigger=view.trigger,
            requestedBy=view.requested_by,
            dryRun=view.dry_run,
            gracePeriodSeconds=view.grace_seconds,
            untaggedManifests=view.untagged_manifests,
            createdDate=view.created_at,
            startedDate=view.started_at,
            finishedDate=view.finished_at,
            progress=GarbageCollectionProgress(
                phase=view.phase, done=view.done, total=view.total, secondsLeft=view.eta_seconds
            ),
            blobsFreed=view.blobs_freed,
            bytesFreed=view.bytes_freed,
            manifestsDeleted=view.manifests_deleted,
            uploadsExpired=view.uploads_expired,
            orphanedObjectsDeleted=view.orphans_deleted,
            error=view.error,
        ),
    )
