"""Vulnerabilities of an artifact and advisories by id (operations 21-22)."""

# No `from __future__ import annotations`: FastAPI reads the Annotated parameter types.
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi import Path as PathParam
from starlette.requests import Request

from cargobay.domain.listing import (
    DEFAULT_LIMIT,
    SEVERITIES,
    SEVERITY_LIST_PATTERN,
    VULNERABILITY_ORDERS,
    parse_order,
    parse_severities,
    signed,
)
from cargobay.management import paths, views
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
from cargobay.services.artifacts import MAX_VULNERABILITY_ID, check_digest, check_vulnerability_id
from cargobay.services.repository_admin import check_repository_name
from cargobay.services.vulnerabilities import FindingQuery

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
    """Vulnerabilities found in the artifact, one per vulnerability (empty until it is scanned)."""
    rid = paths.registry_id(registryId)
    name = check_repository_name(paths.segment(repositoryName))
    digest_value = check_digest(paths.segment(digest))
    key, descending = parse_order(order_by, ORDERS, "-score")
    severities = parse_severities(filter_severity, "filter.severity")
    query = FindingQuery(offset, limit, key, descending, severities, filter_fixable)
    page = await m.artifacts.vulnerabilities(who.principal, rid, name, digest_value, query)
    segments = ("registries", rid, "repositories", name, "artifacts", digest_value, "vulnerabilities")
    fixable = None if filter_fixable is None else str(filter_fixable).lower()
    filters = {"filter.severity": filter_severity, "filter.fixable": fixable, "orderBy": order_by}
    links = page_links(m, request, segments, limit=limit, offset=offset, more=page.more, filters=filters)
    return VulnerabilityReadList(
        href=m.href(request, *segments),
        items=[views.vulnerability(m, request, v) for v in page.items],
        offset=offset,
        limit=limit,
        links=links.links(),
    )


@router.get(
    "/vulnerabilities/{vulnerabilityId}",
    operation_id="vulnerabilitiesFindById",
    response_model=VulnerabilityRead,
    tags=["Vulnerabilities"],
)
async def vulnerabilities_find_by_id(
    request: Request,
    m: Context,
    who: Authenticated,
    vulnerabilityId: Annotated[
        str,
        PathParam(
            description="advisory id, e.g. CVE-2021-44228",
            json_schema_extra={"minLength": 1, "maxLength": MAX_VULNERABILITY_ID},
        ),
    ],
) -> VulnerabilityRead:
    """One advisory of the vulnerability database, by its id or an alias (a CVE id gathers the records
    that name it); 404 when no record has that id."""
    ident = check_vulnerability_id(paths.segment(vulnerabilityId), "vulnerabilityId")
    return views.vulnerability(m, request, await m.vulnerabilities.find(ident))
