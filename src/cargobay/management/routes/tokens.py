"""Registry tokens (operations 9-14)."""

# No `from __future__ import annotations`: FastAPI must see the closure-local Annotated aliases.
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from starlette.requests import Request
from starlette.responses import Response

from cargobay.auth.management import Caller
from cargobay.domain.errors import fields_under
from cargobay.domain.listing import (
    DEFAULT_LIMIT,
    LIMIT_PATTERN,
    MAX_LIMIT,
    MAX_OFFSET,
    OFFSET_PATTERN,
    parse_digits,
)
from cargobay.domain.scopes import parse_token_scopes
from cargobay.management import paths, views
from cargobay.management.context import Management
from cargobay.management.schemas.common import PaginationLinks, errors
from cargobay.management.schemas.tokens import (
    PatchTokenInput,
    PostTokenInput,
    PostTokenProperties,
    TokenResponse,
    TokensResponse,
)
from cargobay.management.security import CallerDependency
from cargobay.services.tokens import TokenChanges, TokenSpec, parse_expiry, parse_spec, parse_status

RegistryId = Annotated[str, paths.uuid_path("the registry id (UUID)")]
TokenId = Annotated[str, paths.uuid_path("the token id (UUID)")]


def _spec(body: PostTokenProperties) -> TokenSpec:
    scopes = [s.model_dump() for s in body.scopes] if body.scopes is not None else None
    return parse_spec(body.name, body.expiryDate, scopes, body.status)


def build(m: Management, caller: CallerDependency) -> APIRouter:
    router = APIRouter(prefix="/registries/{registryId}/tokens", tags=["Tokens"], responses=errors())
    Authenticated = Annotated[Caller, Depends(caller)]

    @router.get("", operation_id="registriesTokensGet", response_model=TokensResponse)
    async def registries_tokens_get(
        request: Request,
        who: Authenticated,
        registryId: RegistryId,
        offset: Annotated[
            str | None, Query(description="first item, digits (default 0)", pattern=OFFSET_PATTERN)
        ] = None,
        limit: Annotated[
            str | None,
            Query(description="page size, digits (default 100, at most 1000)", pattern=LIMIT_PATTERN),
        ] = None,
    ) -> TokensResponse:
        rid = paths.registry_id(registryId)
        start = parse_digits(offset, "offset", 0, 0, MAX_OFFSET)
        size = parse_digits(limit, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
        items, total = await m.tokens.list(who.principal, rid, start, size)
        segments = ("registries", rid, "tokens")

        def page(at: int) -> str:
            return m.href(request, *segments, query={"offset": at, "limit": size})

        return TokensResponse(
            href=m.href(request, *segments),
            items=[views.token(m, request, t) for t in items],
            count=len(items),
            offset=start,
            limit=size,
            total=total,
            links=PaginationLinks.model_validate(
                {
                    "self": page(start),
                    "previous": page(max(0, start - size)) if start > 0 else "",
                    "next": page(start + size) if start + size < total else "",
                }
            ),
        )

    @router.post(
        "",
        operation_id="registriesTokensPost",
        status_code=201,
        response_model=TokenResponse,
        responses=errors(409),
    )
    async def registries_tokens_post(
        request: Request, response: Response, who: Authenticated, registryId: RegistryId, body: PostTokenInput
    ) -> TokenResponse:
        """Create a token; the answer is the only one that carries credentials.password."""
        rid = paths.registry_id(registryId)
        with fields_under("properties"):
            view = await m.tokens.create(who.principal, rid, _spec(body.properties))
        response.headers["Location"] = m.href(request, "registries", rid, "tokens", view.id)
        return views.token(m, request, view)

    @router.get("/{tokenId}", operation_id="registriesTokensFindById", response_model=TokenResponse)
    async def registries_tokens_find_by_id(
        request: Request, who: Authenticated, registryId: RegistryId, tokenId: TokenId
    ) -> TokenResponse:
        view = await m.tokens.get(who.principal, paths.registry_id(registryId), paths.token_id(tokenId))
        return views.token(m, request, view)

    @router.patch("/{tokenId}", operation_id="registriesTokensPatch", response_model=TokenResponse)
    async def registries_tokens_patch(
        request: Request,
        who: Authenticated,
        registryId: RegistryId,
        tokenId: TokenId,
        body: Annotated[PatchTokenInput, Body()],
    ) -> TokenResponse:
        """Absent fields are unchanged; expiryDate null removes the expiry; scopes replaces the list."""
        rid, tid = paths.registry_id(registryId), paths.token_id(tokenId)
        given = body.model_fields_set
        changes: dict[str, Any] = {}
        if "expiryDate" in given:
            changes["expiry_date"] = parse_expiry(body.expiryDate)
        if "scopes" in given:
            raw = [s.model_dump() for s in body.scopes] if body.scopes is not None else None
            changes["scopes"] = tuple(parse_token_scopes(raw))
        if "status" in given:
            changes["status"] = parse_status(body.status)
        view = await m.tokens.patch(who.principal, rid, tid, TokenChanges(**changes))
        return views.token(m, request, view)

    @router.put(
        "/{tokenId}",
        operation_id="registriesTokensPut",
        status_code=201,
        response_model=TokenResponse,
        responses=errors(409),
    )
    async def registries_tokens_put(
        request: Request,
        response: Response,
        who: Authenticated,
        registryId: RegistryId,
        tokenId: TokenId,
        body: PostTokenInput,
    ) -> TokenResponse:
        """Create with this id (password in the answer), or replace status, expiry and scopes."""
        rid, tid = paths.registry_id(registryId), paths.token_id(tokenId)
        with fields_under("properties"):
            view, _created = await m.tokens.put(who.principal, rid, tid, _spec(body.properties))
        response.headers["Location"] = m.href(request, "registries", rid, "tokens", tid)
        return views.token(m, request, view)

    @router.delete(
        "/{tokenId}", operation_id="registriesTokensDelete", status_code=204, response_class=Response
    )
    async def registries_tokens_delete(
        who: Authenticated, registryId: RegistryId, tokenId: TokenId
    ) -> Response:
        await m.tokens.delete(who.principal, paths.registry_id(registryId), paths.token_id(tokenId))
        return Response(status_code=204)

    return router
