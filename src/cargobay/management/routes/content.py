"""Repositories, artifacts and vulnerabilities (operations 15-22)."""

# No `from __future__ import annotations`: FastAPI must see the closure-local Annotated aliases.
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from fastapi import Path as PathParam
from starlette.requests import Request
from starlette.responses import Response

from cargobay.auth.management import Caller
from cargobay.domain.errors import NotFound
from cargobay.domain.listing import (
    DEFAULT_LIMIT,
    MAX_LIMIT,
    MAX_OFFSET,
    REGISTRY_ARTIFACT_ORDERS,
    REPOSITORY_ARTIFACT_ORDERS,
    REPOSITORY_ORDER_VALUES,
    SEVERITIES,
    SEVERITY_LIST_PATTERN,
    VULNERABILITY_ORDERS,
    parse_order,
    parse_severities,
    signed,
)
from cargobay.domain.names import MAX_REPOSITORY_LENGTH, REPOSITORY_RE
from cargobay.management import paths, views
from cargobay.management.context import Management
from cargobay.management.schemas.common import errors
from cargobay.management.schemas.content import (
    ArtifactRead,
    ArtifactReadList,
    RepositoryRead,
    RepositoryReadList,
    VulnerabilityRead,
    VulnerabilityReadList,
)
from cargobay.management.security import CallerDependency
from cargobay.services.artifacts import (
    MAX_VULNERABILITY_ID,
    ArtifactQuery,
    VulnerabilityQuery,
    check_digest,
    check_vulnerability_id,
)
from cargobay.services.repository_admin import RepositoryQuery, check_repository_name

RegistryId = Annotated[str, paths.uuid_path("the registry id (UUID)")]
# Patterns are documentation: the values arrive percent-encoded and are checked once decoded.
RepositoryName = Annotated[
    str,
    PathParam(
        description="repository name, percent-encoded ('/' as %2F)",
        json_schema_extra={"pattern": REPOSITORY_RE.pattern, "maxLength": MAX_REPOSITORY_LENGTH},
    ),
]
DigestParam = Annotated[
    str,
    PathParam(
        description="artifact digest, e.g. sha256:<hex> (':' may be sent as %3A)",
        json_schema_extra={"pattern": "^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$"},
    ),
]

Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="first item (default 0)")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size (default 100)")]


def _order(values: tuple[str, ...], default: str) -> object:
    return Query(alias="orderBy", description=f"default {default}", json_schema_extra={"enum": list(values)})


def build(m: Management, caller: CallerDependency) -> APIRouter:
    router = APIRouter(responses=errors())
    Authenticated = Annotated[Caller, Depends(caller)]
    repo_orders = REPOSITORY_ORDER_VALUES
    registry_artifact_orders = signed(REGISTRY_ARTIFACT_ORDERS)
    repository_artifact_orders = signed(REPOSITORY_ARTIFACT_ORDERS)
    vulnerability_orders = signed(VULNERABILITY_ORDERS)

    @router.get(
        "/registries/{registryId}/repositories",
        operation_id="registriesRepositoriesGet",
        response_model=RepositoryReadList,
        tags=["Repositories"],
    )
    async def registries_repositories_get(
        request: Request,
        who: Authenticated,
        registryId: RegistryId,
        offset: Offset = 0,
        limit: Limit = DEFAULT_LIMIT,
        filter_name: Annotated[str | None, Query(alias="filter.name", description="part of the name")] = None,
        filter_severity: Annotated[
            str | None,
            Query(
                alias="filter.vulnerabilitySeverity",
                description=f"one or more of {','.join(SEVERITIES)}",
                json_schema_extra={"pattern": SEVERITY_LIST_PATTERN},
            ),
        ] = None,
        order_by: Annotated[str | None, _order(repo_orders, "-lastPush")] = None,
    ) -> RepositoryReadList:
        rid = paths.registry_id(registryId)
        key, descending = parse_order(order_by, repo_orders, "-lastPush")
        query = RepositoryQuery(
            offset=offset,
            limit=limit,
            order=key,
            descending=descending,
            name_filter=filter_name or None,
            severities=parse_severities(filter_severity, "filter.vulnerabilitySeverity"),
        )
        items, total = await m.repositories.list(who.principal, rid, query)
        segments = ("registries", rid, "repositories")
        extra: dict[str, str | int] = {
            k: v
            for k, v in (
                ("filter.name", filter_name),
                ("filter.vulnerabilitySeverity", filter_severity),
                ("orderBy", order_by),
            )
            if v
        }
        return RepositoryReadList(
            href=m.href(request, *segments),
            items=[views.repository(m, request, v) for v in items],
            offset=offset,
            limit=limit,
            links=views.offset_links(m, request, segments, offset, limit, total, extra),
        )

    @router.get(
        "/registries/{registryId}/repositories/{repositoryName}",
        operation_id="registriesRepositoriesFindByName",
        response_model=RepositoryRead,
        tags=["Repositories"],
    )
    async def registries_repositories_find_by_name(
        request: Request, who: Authenticated, registryId: RegistryId, repositoryName: RepositoryName
    ) -> RepositoryRead:
        rid = paths.registry_id(registryId)
        name = check_repository_name(paths.segment(repositoryName))
        return views.repository(m, request, await m.repositories.get(who.principal, rid, name))

    @router.delete(
        "/registries/{registryId}/repositories/{repositoryName}",
        operation_id="registriesRepositoriesDelete",
        status_code=204,
        response_class=Response,
        tags=["Repositories"],
    )
    async def registries_repositories_delete(
        who: Authenticated, registryId: RegistryId, repositoryName: RepositoryName
    ) -> Response:
        """Remove the repository's manifests and tags at once; storage is freed by the next GC."""
        rid = paths.registry_id(registryId)
        name = check_repository_name(paths.segment(repositoryName))
        await m.repositories.delete(who.principal, rid, name)
        return Response(status_code=204)

    @router.get(
        "/registries/{registryId}/artifacts",
        operation_id="registriesArtifactsGet",
        response_model=ArtifactReadList,
        tags=["Artifacts"],
    )
    async def registries_artifacts_get(
        request: Request,
        who: Authenticated,
        registryId: RegistryId,
        offset: Offset = 0,
        limit: Limit = DEFAULT_LIMIT,
        filter_vulnerability: Annotated[
            str | None,
            Query(
                alias="filter.vulnerabilityId",
                description="only artifacts affected by it (none until scanning exists)",
                max_length=MAX_VULNERABILITY_ID,
            ),
        ] = None,
        order_by: Annotated[str | None, _order(registry_artifact_orders, "-pullCount")] = None,
    ) -> ArtifactReadList:
        rid = paths.registry_id(registryId)
        key, descending = parse_order(order_by, registry_artifact_orders, "-pullCount")
        vulnerability = (
            check_vulnerability_id(filter_vulnerability, "filter.vulnerabilityId")
            if filter_vulnerability
            else None
        )
        query = ArtifactQuery(offset, limit, key, descending, vulnerability)
        items, total = await m.artifacts.in_registry(who.principal, rid, query)
        segments = ("registries", rid, "artifacts")
        extra: dict[str, str | int] = {
            k: v for k, v in (("filter.vulnerabilityId", filter_vulnerability), ("orderBy", order_by)) if v
        }
        return ArtifactReadList(
            href=m.href(request, *segments),
            items=[views.artifact(m, request, v) for v in items],
            offset=offset,
            limit=limit,
            links=views.offset_links(m, request, segments, offset, limit, total, extra),
        )

    @router.get(
        "/registries/{registryId}/repositories/{repositoryName}/artifacts",
        operation_id="registriesRepositoriesArtifactsGet",
        response_model=ArtifactReadList,
        tags=["Artifacts"],
    )
    async def registries_repositories_artifacts_get(
        request: Request,
        who: Authenticated,
        registryId: RegistryId,
        repositoryName: RepositoryName,
        offset: Offset = 0,
        limit: Limit = DEFAULT_LIMIT,
        order_by: Annotated[str | None, _order(repository_artifact_orders, "-lastPush")] = None,
    ) -> ArtifactReadList:
        rid = paths.registry_id(registryId)
        name = check_repository_name(paths.segment(repositoryName))
        key, descending = parse_order(order_by, repository_artifact_orders, "-lastPush")
        items, total = await m.artifacts.in_repository(
            who.principal, rid, name, ArtifactQuery(offset, limit, key, descending)
        )
        segments = ("registries", rid, "repositories", name, "artifacts")
        extra: dict[str, str | int] = {"orderBy": order_by} if order_by else {}
        return ArtifactReadList(
            href=m.href(request, *segments),
            items=[views.artifact(m, request, v) for v in items],
            offset=offset,
            limit=limit,
            links=views.offset_links(m, request, segments, offset, limit, total, extra),
        )

    @router.get(
        "/registries/{registryId}/repositories/{repositoryName}/artifacts/{digest}",
        operation_id="registriesRepositoriesArtifactsFindByDigest",
        response_model=ArtifactRead,
        tags=["Artifacts"],
    )
    async def registries_repositories_artifacts_find_by_digest(
        request: Request,
        who: Authenticated,
        registryId: RegistryId,
        repositoryName: RepositoryName,
        digest: DigestParam,
    ) -> ArtifactRead:
        rid = paths.registry_id(registryId)
        name = check_repository_name(paths.segment(repositoryName))
        view = await m.artifacts.get(who.principal, rid, name, check_digest(paths.segment(digest)))
        return views.artifact(m, request, view)

    @router.get(
        "/registries/{registryId}/repositories/{repositoryName}/artifacts/{digest}/vulnerabilities",
        operation_id="registriesRepositoriesArtifactsVulnerabilitiesGet",
        response_model=VulnerabilityReadList,
        tags=["Artifacts"],
    )
    async def registries_repositories_artifacts_vulnerabilities_get(
        request: Request,
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
        order_by: Annotated[str | None, _order(vulnerability_orders, "-score")] = None,
    ) -> VulnerabilityReadList:
        """Vulnerabilities found in the artifact (empty until vulnerability scanning exists)."""
        rid = paths.registry_id(registryId)
        name = check_repository_name(paths.segment(repositoryName))
        digest_value = check_digest(paths.segment(digest))
        key, descending = parse_order(order_by, vulnerability_orders, "-score")
        query = VulnerabilityQuery(
            offset,
            limit,
            key,
            descending,
            parse_severities(filter_severity, "filter.severity"),
            filter_fixable,
        )
        _items, total = await m.artifacts.vulnerabilities(who.principal, rid, name, digest_value, query)
        segments = ("registries", rid, "repositories", name, "artifacts", digest_value, "vulnerabilities")
        return VulnerabilityReadList(
            href=m.href(request, *segments),
            items=[],
            offset=offset,
            limit=limit,
            links=views.offset_links(m, request, segments, offset, limit, total),
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

    return router
