"""Locations, name checks and registries (operations 1-8)."""

# No `from __future__ import annotations`: FastAPI reads the Annotated parameter types.
from typing import Annotated, Any

from fastapi import APIRouter, Body
from fastapi import Path as PathParam
from starlette.requests import Request
from starlette.responses import Response

from cargobay.domain.allowlist import validate_allowlist
from cargobay.domain.errors import NotFound, fields_under
from cargobay.domain.listing import DEFAULT_LIMIT, MAX_LIMIT, decode_cursor, encode_cursor, parse_digits
from cargobay.domain.names import REGISTRY_NAME_RE
from cargobay.management import paths, views
from cargobay.management.context import Management
from cargobay.management.pagination import page_links
from cargobay.management.routes.params import LimitDigits, NameFilter, PaginationToken, RegistryId
from cargobay.management.schemas.common import errors
from cargobay.management.schemas.registries import (
    Location,
    LocationsResponse,
    PatchRegistryInput,
    PostRegistryInput,
    PostRegistryProperties,
    RegistriesResponse,
    RegistryPagination,
    RegistryResponse,
)
from cargobay.management.security import Authenticated, Context
from cargobay.services.registry_admin import RegistryChanges, RegistrySpec, parse_spec, schedule_of

router = APIRouter(responses=errors())


def _spec(m: Management, body: PostRegistryProperties) -> RegistrySpec:
    features = body.features.vulnerabilityScanning if body.features else None
    schedule = body.garbageCollectionSchedule
    return parse_spec(
        name=body.name,
        location=body.location,
        schedule=(schedule.days, schedule.time) if schedule is not None else None,
        scanning=features.enabled if features is not None else None,
        allowlist=body.apiSubnetAllowList,
        locations=m.settings.locations,
    )


@router.get("/locations", operation_id="locationsGet", response_model=LocationsResponse, tags=["Locations"])
async def locations_get(request: Request, m: Context, who: Authenticated) -> LocationsResponse:
    """Location ids in which registries may be created."""
    return LocationsResponse(
        href=m.href(request, "locations"), items=[Location(id=loc) for loc in m.settings.locations]
    )


@router.head(
    "/names/{name}",
    operation_id="namesCheckUsage",
    status_code=200,
    response_class=Response,
    tags=["Names"],
    responses={200: {"description": "the name is valid and taken"}, 404: {"description": "available"}},
)
async def names_check_usage(
    m: Context,
    who: Authenticated,
    name: Annotated[
        str,
        PathParam(
            description="registry name to check", json_schema_extra={"pattern": REGISTRY_NAME_RE.pattern}
        ),
    ],
) -> Response:
    """200 when the name is taken, 404 when it is available, 400 when it breaks the naming rules."""
    if not await m.registries.name_in_use(paths.segment(name)):
        raise NotFound("registry name", name, f"registry name {paths.segment(name)!r} is available")
    return Response(status_code=200)


@router.get(
    "/registries", operation_id="registriesGet", response_model=RegistriesResponse, tags=["Registries"]
)
async def registries_get(
    request: Request,
    m: Context,
    who: Authenticated,
    filter_name: NameFilter = None,
    limit: LimitDigits = None,
    pagination_token: PaginationToken = None,
) -> RegistriesResponse:
    size = parse_digits(limit, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    after = decode_cursor(pagination_token)
    items, more = await m.registries.list(who.principal, filter_name, size, after)
    cursor = encode_cursor(items[-1].name) if more and items else ""
    links = page_links(
        m,
        request,
        ("registries",),
        limit=size,
        offset=None,
        more=more,
        filters={"filter.name": filter_name},
        token=pagination_token,
        next_token=cursor,
    )
    return RegistriesResponse(
        href=m.href(request, "registries"),
        items=[views.registry(m, request, v) for v in items],
        pagination=RegistryPagination(limit=size, token=cursor),
        links=links.pagination_links(),
    )


@router.post(
    "/registries",
    operation_id="registriesPost",
    status_code=201,
    response_model=RegistryResponse,
    tags=["Registries"],
    responses=errors(409),
)
async def registries_post(
    request: Request, response: Response, m: Context, who: Authenticated, body: PostRegistryInput
) -> RegistryResponse:
    """Create a registry: answered in state New with hostname ""; Running right after."""
    with fields_under("properties"):
        view = await m.registries.create(who.principal, _spec(m, body.properties))
    response.headers["Location"] = m.href(request, "registries", view.id)
    return views.registry(m, request, view)


@router.get(
    "/registries/{registryId}",
    operation_id="registriesFindById",
    response_model=RegistryResponse,
    tags=["Registries"],
)
async def registries_find_by_id(
    request: Request, m: Context, who: Authenticated, registryId: RegistryId
) -> RegistryResponse:
    view = await m.registries.get(who.principal, paths.registry_id(registryId))
    return views.registry(m, request, view)


@router.patch(
    "/registries/{registryId}",
    operation_id="registriesPatch",
    response_model=RegistryResponse,
    tags=["Registries"],
)
async def registries_patch(
    request: Request,
    m: Context,
    who: Authenticated,
    registryId: RegistryId,
    body: Annotated[PatchRegistryInput, Body()],
) -> RegistryResponse:
    """Absent fields are unchanged; apiSubnetAllowList [] (or null) clears; schedule null removes."""
    rid = paths.registry_id(registryId)
    given = body.model_fields_set
    body.refuse_wrapper()
    changes: dict[str, Any] = {}
    if "garbageCollectionSchedule" in given:
        schedule = body.garbageCollectionSchedule
        changes["schedule"] = schedule_of((schedule.days, schedule.time) if schedule else None)
    if "features" in given and body.features is not None and body.features.vulnerabilityScanning is not None:
        changes["vulnerability_scanning"] = body.features.vulnerabilityScanning.enabled
    if "apiSubnetAllowList" in given:
        changes["allowlist"] = tuple(validate_allowlist(body.apiSubnetAllowList, "apiSubnetAllowList"))
    view = await m.registries.patch(who.principal, rid, RegistryChanges(**changes))
    return views.registry(m, request, view)


@router.put(
    "/registries/{registryId}",
    operation_id="registriesPut",
    status_code=201,
    response_model=RegistryResponse,
    tags=["Registries"],
    responses=errors(409),
)
async def registries_put(
    request: Request,
    response: Response,
    m: Context,
    who: Authenticated,
    registryId: RegistryId,
    body: PostRegistryInput,
) -> RegistryResponse:
    """Create with this id, or replace schedule, features and allow-list (name and location are fixed)."""
    rid = paths.registry_id(registryId)
    with fields_under("properties"):
        saved = await m.registries.put(who.principal, rid, _spec(m, body.properties))
    response.headers["Location"] = m.href(request, "registries", rid)
    return views.registry(m, request, saved.view)


@router.delete(
    "/registries/{registryId}",
    operation_id="registriesDelete",
    status_code=204,
    response_class=Response,
    tags=["Registries"],
)
async def registries_delete(m: Context, who: Authenticated, registryId: RegistryId) -> Response:
    """Delete the registry with its tokens, repositories and stored data."""
    await m.registries.delete(who.principal, paths.registry_id(registryId))
    return Response(status_code=204)
