"""Cargobay's extensions beyond the IONOS API, under ``/x-cargobay/`` and left out of its OpenAPI
document (the 22 operations stay exactly the IONOS ones): an artifact's software bill of materials and
the state of its scan."""

# No `from __future__ import annotations`: FastAPI reads the Annotated parameter types.
from typing import Any

from fastapi import APIRouter
from starlette.responses import Response

from cargobay.domain.timestamps import render_timestamp
from cargobay.management import paths
from cargobay.management.routes.params import DigestParam, RegistryId, RepositoryName
from cargobay.management.security import Authenticated, Context
from cargobay.services.artifacts import check_digest
from cargobay.services.repository_admin import check_repository_name

router = APIRouter(prefix="/x-cargobay", include_in_schema=False)
ARTIFACT = "/registries/{registryId}/repositories/{repositoryName}/artifacts/{digest}"
CYCLONEDX = "application/vnd.cyclonedx+json"


def _artifact(registry_id: str, repository: str, digest: str) -> tuple[str, str, str]:
    return (
        paths.registry_id(registry_id),
        check_repository_name(paths.segment(repository)),
        check_digest(paths.segment(digest)),
    )


@router.get(ARTIFACT + "/sbom")
async def artifact_sbom(
    m: Context,
    who: Authenticated,
    registryId: RegistryId,
    repositoryName: RepositoryName,
    digest: DigestParam,
) -> Response:
    """The artifact's CycloneDX 1.6 JSON, built by a job after its scan; 404 until then."""
    text = await m.artifacts.sbom(who.principal, *_artifact(registryId, repositoryName, digest))
    return Response(text.encode(), media_type=CYCLONEDX)


@router.get(ARTIFACT + "/scan")
async def artifact_scan(
    m: Context,
    who: Authenticated,
    registryId: RegistryId,
    repositoryName: RepositoryName,
    digest: DigestParam,
) -> dict[str, Any]:
    """The state of the artifact's scan: status, time, database version, inventory and summary."""
    report = await m.artifacts.scan_report(who.principal, *_artifact(registryId, repositoryName, digest))
    return {
        "digest": report.digest,
        "status": report.status,
        "lastScannedAt": render_timestamp(report.scanned_at) if report.scanned_at else None,
        "databaseVersion": report.database_version,
        "operatingSystem": report.operating_system,
        "packages": report.packages,
        "vulnMaxSeverity": report.max_severity,
        "vulnTotalCount": report.total_count,
        "vulnFixableCount": report.fixable_count,
        "vulnTotalScore": report.total_score,
    }
