"""Repositories (operations 15-17)."""

# No `from __future__ import annotations`: FastAPI reads the Annotated parameter types.
from typing import Annotated

from fastapi import APIRouter, Query
from starlette.requests import Request
from starlette.responses import Response

from cargobay.domain.listing import (
    DEFAULT_LIMIT,
    REPOSITORY_ORDER_VALUES,
    SEVERITIES,
    SEVERITY_LIST_PATTERN,
    parse_order,
    parse_severities,
)
from cargobay.management import paths, views
from cargobay.management.pagination import Cursor, page_links
from cargobay.management.routes.params import (
    Limit,
    NameFilter,
    Offset,
    RegistryId,
    RepositoryName,
    SeekToken,
    order_query,
)
from cargobay.management.schemas.common import errors
from cargobay.management.schemas.content import RepositoryRead, RepositoryReadList
from cargobay.management.security import Authenticated, Context
from cargobay.services.repository_admin import RepositoryQuery, check_repository_name

router = APIRouter(responses=errors(), tags=["Repositories"])
DEFAULT_ORDER = "-lastPush"


@router.get(
    "/registries/{registryId}/repositories",
    operation_id="registriesRepositoriesGet",
    response_model=RepositoryReadList,
)
async def registries_repositories_get(
    request: Request,
    m: Context,
    who: Authenticated,
    registryId: RegistryId,
    offset: Offset = 0,
    limit: Limit = DEFAULT_LIMIT,
    filter_name: NameFilter = None,
    filter_severity: Annotated[
        str | None,
        Query(
            alias="filter.vulnerabilitySeverity",
            description=f"one or more of {','.join(SEVERITIES)}",
            json_schema_extra={"pattern": SEVERITY_LIST_PATTERN},
        ),
    ] = None,
    order_by: Annotated[str | None, order_query(REPOSITORY_ORDER_VALUES, DEFAULT_ORDER)] = None,
    pagination_token: SeekToken = None,
) -> RepositoryReadList:
    rid = paths.registry_id(registryId)
    key, descending = parse_order(order_by, REPOSITORY_ORDER_VALUES, DEFAULT_ORDER)
    segments = ("registries", rid, "repositories")
    filters = {
        "filter.name": filter_name,
        "filter.vulnerabilitySeverity": filter_severity,
        "orderBy": order_by,
    }
    cursor = Cursor.of(segments, filters, offset, limit, pagination_token)
    query = RepositoryQuery(
        offset=offset,
        limit=limit,
        order=key,
        descending=descending,
        name_filter=filter_name or None,
        severities=parse_severities(filter_severity, "filter.vulnerabilitySeverity"),
        after=cursor.position(),
    )
    page = await m.repositories.list(who.principal, rid, query)
    links = page_links(
        m,
        request,
        segments,
        limit=limit,
        offset=offset,
        more=page.more,
        filters=filters,
        next_token=cursor.next_token(page),
    )
    return RepositoryReadList(
        href=m.href(request, *segments),
        items=[views.repository(m, request, v) for v in page.items],
        offset=offset,
        limit=limit,
        links=links.links(),
    )


@router.get(
    "/registries/{registryId}/repositories/{repositoryName}",
    operation_id="registriesRepositoriesFindByName",
    response_model=RepositoryRead,
)
async def registries_repositories_find_by_name(
    request: Request, m: Context, who: Authenticated, registryId: RegistryId, repositoryName: RepositoryName
) -> RepositoryRead:
    rid = paths.registry_id(registryId)
    name = check_repository_name(paths.segment(repositoryName))
    return views.repository(m, request, await m.repositories.get(who.principal, rid, name))


@router.delete(
    "/registries/{registryId}/repositories/{repositoryName}",
    operation_id="registriesRepositoriesDelete",
    status_code=204,
    response_class=Response,
)
async def registries_repositories_delete(
    m: Context, who: Authenticated, registryId: RegistryId, repositoryName: RepositoryName
) -> Response:
    """Remove the repository's manifests and tags at once; storage is freed by the next GC."""
    rid = paths.registry_id(registryId)
    name = check_repository_name(paths.segment(repositoryName))
    await m.repositories.delete(who.principal, rid, name)
    return Response(status_code=204)
