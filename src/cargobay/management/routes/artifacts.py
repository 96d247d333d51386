"""Artifacts of a registry and of a repository, and one artifact by digest (operations 18-20)."""

# No `from __future__ import annotations`: FastAPI reads the Annotated parameter types.
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request

from cargobay.domain.listing import (
    DEFAULT_LIMIT,
    REGISTRY_ARTIFACT_ORDERS,
    REPOSITORY_ARTIFACT_ORDERS,
    Page,
    parse_order,
    signed,
)
from cargobay.management import paths, views
from cargobay.management.context import Management
from cargobay.management.pagination import Cursor, page_links
from cargobay.management.routes.params import (
    DigestParam,
    Limit,
    Offset,
    RegistryId,
    RepositoryName,
    SeekToken,
    order_query,
)
from cargobay.management.schemas.common import errors
from cargobay.management.schemas.content import ArtifactRead, ArtifactReadList
from cargobay.management.security import Authenticated, Context
from cargobay.services.artifacts import (
    MAX_VULNERABILITY_ID,
    ArtifactQuery,
    ArtifactView,
    check_digest,
    check_vulnerability_id,
)
from cargobay.services.repository_admin import check_repository_name

router = APIRouter(responses=errors(), tags=["Artifacts"])
REGISTRY_ORDERS = signed(REGISTRY_ARTIFACT_ORDERS)
REPOSITORY_ORDERS = signed(REPOSITORY_ARTIFACT_ORDERS)


@router.get(
    "/registries/{registryId}/artifacts",
    operation_id="registriesArtifactsGet",
    response_model=ArtifactReadList,
)
async def registries_artifacts_get(
    request: Request,
    m: Context,
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
    order_by: Annotated[str | None, order_query(REGISTRY_ORDERS, "-pullCount")] = None,
    pagination_token: SeekToken = None,
) -> ArtifactReadList:
    rid = paths.registry_id(registryId)
    key, descending = parse_order(order_by, REGISTRY_ORDERS, "-pullCount")
    vulnerability = (
        check_vulnerability_id(filter_vulnerability, "filter.vulnerabilityId")
        if filter_vulnerability
        else None
    )
    segments = ("registries", rid, "artifacts")
    filters = {"filter.vulnerabilityId": filter_vulnerability, "orderBy": order_by}
    cursor = Cursor.of(segments, filters, offset, limit, pagination_token)
    query = ArtifactQuery(offset, limit, key, descending, vulnerability, cursor.position())
    page = await m.artifacts.in_registry(who.principal, rid, query)
    return _list(m, request, segments, page, cursor, filters)


@router.get(
    "/registries/{registryId}/repositories/{repositoryName}/artifacts",
    operation_id="registriesRepositoriesArtifactsGet",
    response_model=ArtifactReadList,
)
async def registries_repositories_artifacts_get(
    request: Request,
    m: Context,
    who: Authenticated,
    registryId: RegistryId,
    repositoryName: RepositoryName,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
    order_by: Annotated[str | None, order_query(REPOSITORY_ORDERS, "-lastPush")] = None,
    pagination_token: SeekToken = None,
) -> ArtifactReadList:
    rid = paths.registry_id(registryId)
    name = check_repository_name(paths.segment(repositoryName))
    key, descending = parse_order(order_by, REPOSITORY_ORDERS, "-lastPush")
    segments = ("registries", rid, "repositories", name, "artifacts")
    filters = {"orderBy": order_by}
    cursor = Cursor.of(segments, filters, offset, limit, pagination_token)
    query = ArtifactQuery(offset, limit, key, descending, after=cursor.position())
    page = await m.artifacts.in_repository(who.principal, rid, name, query)
    return _list(m, request, segments, page, cursor, filters)


@router.get(
    "/registries/{registryId}/repositories/{repositoryName}/artifacts/{digest}",
    operation_id="registriesRepositoriesArtifactsFindByDigest",
    response_model=ArtifactRead,
)
async def registries_repositories_artifacts_find_by_digest(
    request: Request,
    m: Context,
    who: Authenticated,
    registryId: RegistryId,
    repositoryName: RepositoryName,
    digest: DigestParam,
) -> ArtifactRead:
    rid = paths.registry_id(registryId)
    name = check_repository_name(paths.segment(repositoryName))
    view = await m.artifacts.get(who.principal, rid, name, check_digest(paths.segment(digest)))
    return views.artifact(m, request, view)


def _list(
    m: Management,
    request: Request,
    segments: tuple[str, ...],
    page: Page[ArtifactView],
    cursor: Cursor,
    filters: dict[str, str | None],
) -> ArtifactReadList:
    links = page_links(
        m,
        request,
        segments,
        limit=cursor.limit,
        offset=cursor.offset,
        more=page.more,
        filters=filters,
        next_token=cursor.next_token(page),
    )
    return ArtifactReadList(
        href=m.href(request, *segments),
        items=[views.artifact(m, request, v) for v in page.items],
        offset=cursor.offset,
        limit=cursor.limit,
        links=links.links(),
    )
