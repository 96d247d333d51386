"""Vulnerabilities of an artifact and advisories by id (operations 21-22): empty lists and 404s until
vulnerability scanning exists."""

# No `from __future__ import annotations`: FastAPI reads the Annotated parameter types.
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from starlette.requests import Request

from cargobay.domain.errors import NotFound
from cargobay.domain.listing import (
    DEFAULT_LIMIT,
    SEVERITIES,
    SEVERITY_LIST_PATTERN,
    VULNERABILITY_ORDERS,
    parse_order,
    parse_severities,
    signed,
)
from cargobay.management import paths
from cargobay.management.pagination import page_links
from cargobay.management.routes.params import (
    DigestParam,
    Limit,
    Offset,
    RegistryId,
    RepositoryName,
    order_query,
)
from cargobay.management.schemas.common import errors
from cargobay.management.schemas.content import VulnerabilityRead, VulnerabilityReadList
from cargobay.management.security import Authenticated, Context
from cargobay.services.artifacts import (
    MAX_VULNERABILITY_ID,
    VulnerabilityQuery,
    check_digest,
    check_vulnerability_id,
)
from cargobay.services.repository_admin import check_repository_name

router = APIRouter(responses=errors())
ORDERS = signed(VULNERABILITY_ORDERS)


@router.get(
    "/registries/{registryId}/repositories/{repositoryName}/artifacts/{digest}/vulnerabilities",
    operation_id="registriesRepositoriesArtifactsVulnerabilitiesGet",
    response_model=VulnerabilityReadList,
    tags=["Artifacts"],
)
async def registries_repositories_artifacts_vulnerabilities_get(
    request: Request,
    m: Context,
    who: Authenticated,
    registryId: RegistryId,
    repositoryName: RepositoryName,
    digest: DigestParam,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
    filter_severity: Annotated[
        str | None,
        Query(
            alias="filter.severity",
            description=f"one or more of {','.join(SEVERITIES)}",
            json_schema_extra={"pattern": SEVERITY_LIST_PATTERN},
        ),
    ] = None,
    filter_fixable: Annotated[bool | None, Query(alias="filter.fixable")] = None,
    order_by: Annotated[str | None, order_query(ORDERS, "-score")] = None,
) -> VulnerabilityReadList:
    """Vulnerabilities found in the artifact (empty until vulnerability scanning exists)."""
    rid = paths.registry_id(registryId)
    name = check_repository_name(paths.segment(repositoryName))
    digest_value = check_digest(paths.segment(digest))
    key, descending = parse_order(order_by, ORDERS, "-score")
    query = VulnerabilityQuery(
        offset, limit, key, descending, parse_severities(filter_severity, "filter.severity"), filter_fixable
    )
    page = await m.artifacts.vulnerabilities(who.principal, rid, name, digest_value, query)
    segments = ("registries", rid, "repositories", name, "artifacts", digest_value, "vulnerabilities")
    return VulnerabilityReadList(
        href=m.href(request, *segments),
        items=[],
        offset=offset,
        limit=limit,
        links=page_links(m, request, segments, limit=limit, offset=offset, more=page.more).links(),
    )


@router.get(
    "/vulnerabilities/{vulnerabilityId}",
    operation_id="vulnerabilitiesFindById",
    response_model=VulnerabilityRead,
    tags=["Vulnerabilities"],
)
async def vulnerabilities_find_by_id(
    who: Authenticated,
    vulnerabilityId: Annotated[
        str,
        PathParam(
            description="advisory id, e.g. CVE-2021-44228",
            json_schema_extra={"minLength": 1, "maxLength": MAX_VULNERABILITY_ID},
        ),
    ],
) -> VulnerabilityRead:
    """One advisory; 404 for every id until a vulnerability database is loaded."""
    ident = check_vulnerability_id(paths.segment(vulnerabilityId), "vulnerabilityId")
    raise NotFound(
        "vulnerability", ident, f"vulnerability {ident} not found (no vulnerability database is loaded)"
    )
