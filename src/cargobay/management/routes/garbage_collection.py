"""Garbage-collection runs: Cargobay's extension beside the IONOS operations (README, "Garbage
collection"). Owners, admins and users with manageRegistry start a run; every member of the contract
lists the registry's recent runs."""

# No `from __future__ import annotations`: FastAPI reads the Annotated parameter types.
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query
from starlette.requests import Request
from starlette.responses import Response

from cargobay.management import paths, views
from cargobay.management.routes.params import RegistryId
from cargobay.management.schemas.common import errors
from cargobay.management.schemas.gc import (
    GarbageCollectionRunRead,
    GarbageCollectionRunReadList,
    PostGarbageCollectionRunInput,
)
from cargobay.management.security import Authenticated, Context
from cargobay.services.gc import DEFAULT_RUN_LIST, RUN_ID_PATTERN, RUN_LIST_LIMIT

router = APIRouter(
    prefix="/registries/{registryId}/garbageCollection/runs",
    responses=errors(),
    tags=["Garbage collection (Cargobay extension)"],
)
RunId = Annotated[str, Path(description="the run's number", json_schema_extra={"pattern": RUN_ID_PATTERN})]


@router.post(
    "",
    operation_id="registriesGarbageCollectionRunsPost",
    status_code=202,
    response_model=GarbageCollectionRunRead,
)
async def registries_garbage_collection_runs_post(
    request: Request,
    response: Response,
    m: Context,
    who: Authenticated,
    registryId: RegistryId,
    body: Annotated[PostGarbageCollectionRunInput | None, Body()] = None,
) -> GarbageCollectionRunRead:
    """Queue a run of the registry's garbage collection (a job any process may take); a run of the
    same kind already queued and not started is answered instead of a second one."""
    rid = paths.registry_id(registryId)
    dry_run = body.properties.dryRun if body is not None else False
    view = await m.gc.request_run(who.principal, rid, dry_run)
    response.headers["Location"] = m.href(
        request, "registries", rid, "garbageCollection", "runs", str(view.id)
    )
    return views.gc_run(m, request, rid, view)


@router.get(
    "",
    operation_id="registriesGarbageCollectionRunsGet",
    response_model=GarbageCollectionRunReadList,
)
async def registries_garbage_collection_runs_get(
    request: Request,
    m: Context,
    who: Authenticated,
    registryId: RegistryId,
    limit: Annotated[
        int,
        Query(ge=1, le=RUN_LIST_LIMIT, description=f"how many of the newest (default {DEFAULT_RUN_LIST})"),
    ] = DEFAULT_RUN_LIST,
) -> GarbageCollectionRunReadList:
    rid = paths.registry_id(registryId)
    runs = await m.gc.list_runs(who.principal, rid, limit)
    return GarbageCollectionRunReadList(
        href=m.href(request, "registries", rid, "garbageCollection", "runs"),
        items=[views.gc_run(m, request, rid, run) for run in runs],
        limit=limit,
    )


@router.get(
    "/{runId}",
    operation_id="registriesGarbageCollectionRunsFindById",
    response_model=GarbageCollectionRunRead,
)
async def registries_garbage_collection_runs_find_by_id(
    request: Request, m: Context, who: Authenticated, registryId: RegistryId, runId: RunId
) -> GarbageCollectionRunRead:
    rid = paths.registry_id(registryId)
    view = await m.gc.get_run(who.principal, rid, paths.run_id(runId))
    return views.gc_run(m, request, rid, view)
