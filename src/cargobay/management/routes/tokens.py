"""Registry tokens (operations 9-14)."""

# No `from __future__ import annotations`: FastAPI reads the Annotated parameter types.
from typing import Annotated, Any

from fastapi import APIRouter, Body
from starlette.requests import Request
from starlette.responses import Response

from cargobay.domain.errors import fields_under
from cargobay.domain.listing import DEFAULT_LIMIT, MAX_LIMIT, MAX_OFFSET, parse_digits
from cargobay.domain.scopes import parse_token_scopes
from cargobay.management import paths, views
from cargobay.management.pagination import page_links
from cargobay.management.routes.params import LimitDigits, OffsetDigits, RegistryId, TokenId
from cargobay.management.schemas.common import errors
from cargobay.management.schemas.tokens import (
    PatchTokenInput,
    PostTokenInput,
    PostTokenProperties,
    TokenResponse,
    TokensResponse,
)
from cargobay.management.security import Authenticated, Context
from cargobay.services.tokens import TokenChanges, TokenSpec, parse_expiry, parse_spec, parse_status

router = APIRouter(prefix="/registries/{registryId}/tokens", tags=["Tokens"], responses=errors())


def _spec(body: PostTokenProperties) -> TokenSpec:
    scopes = [s.model_dump() for s in body.scopes] if body.scopes is not None else None
    return parse_spec(body.name, body.expiryDate, scopes, body.status)


@router.get("", operation_id="registriesTokensGet", response_model=TokensResponse)
async def registries_tokens_get(
    request: Request,
    m: Context,
    who: Authenticated,
    registryId: RegistryId,
    offset: OffsetDigits = None,
    limit: LimitDigits = None,
) -> TokensResponse:
    rid = paths.registry_id(registryId)
    start = parse_digits(offset, "offset", 0, 0, MAX_OFFSET)
    size = parse_digits(limit, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    items, total = await m.tokens.list(who.principal, rid, start, size)
    links = page_links(
        m, request, ("registries", rid, "tokens"), limit=size, offset=start, more=start + size < total
    )
    return TokensResponse(
        href=m.href(request, "registries", rid, "tokens"),
        items=[views.token(m, request, t) for t in items],
        count=len(items),
        offset=start,
        limit=size,
        total=total,
        links=links.pagination_links(),
    )


@router.post(
    "",
    operation_id="registriesTokensPost",
    status_code=201,
    response_model=TokenResponse,
    responses=errors(409),
)
async def registries_tokens_post(
    request: Request,
    response: Response,
    m: Context,
    who: Authenticated,
    registryId: RegistryId,
    body: PostTokenInput,
) -> TokenResponse:
    """Create a token; the answer is the only one that carries credentials.password."""
    rid = paths.registry_id(registryId)
    with fields_under("properties"):
        view = await m.tokens.create(who.principal, rid, _spec(body.properties))
    response.headers["Location"] = m.href(request, "registries", rid, "tokens", view.id)
    return views.token(m, request, view)


@router.get("/{tokenId}", operation_id="registriesTokensFindById", response_model=TokenResponse)
async def registries_tokens_find_by_id(
    request: Request, m: Context, who: Authenticated, registryId: RegistryId, tokenId: TokenId
) -> TokenResponse:
    view = await m.tokens.get(who.principal, paths.registry_id(registryId), paths.token_id(tokenId))
    return views.token(m, request, view)


@router.patch("/{tokenId}", operation_id="registriesTokensPatch", response_model=TokenResponse)
async def registries_tokens_patch(
    request: Request,
    m: Context,
    who: Authenticated,
    registryId: RegistryId,
    tokenId: TokenId,
    body: Annotated[PatchTokenInput, Body()],
) -> TokenResponse:
    """Absent fields are unchanged; expiryDate null removes the expiry; scopes replaces the list."""
    rid, tid = paths.registry_id(registryId), paths.token_id(tokenId)
    body.refuse_wrapper()
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
    m: Context,
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


@router.delete("/{tokenId}", operation_id="registriesTokensDelete", status_code=204, response_class=Response)
async def registries_tokens_delete(
    m: Context, who: Authenticated, registryId: RegistryId, tokenId: TokenId
) -> Response:
    await m.tokens.delete(who.principal, paths.registry_id(registryId), paths.token_id(tokenId))
    return Response(status_code=204)
