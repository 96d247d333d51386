"""``/auth/v1``: bearer tokens for the management API, compatible with the IONOS Auth API.

``GET /tokens/generate`` (Basic or Bearer in, ``{"token": "<JWT>"}`` out), ``GET /tokens``,
``GET /tokens/{id}``, ``DELETE /tokens/{id}`` and ``DELETE /tokens?criteria=ALL|EXPIRED|CURRENT``.
"""

# No `from __future__ import annotations`: FastAPI reads the Annotated parameter types.
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query
from starlette.requests import Request

from cargobay.auth.management import ManagementAuthenticator
from cargobay.domain.timestamps import render_timestamp
from cargobay.management import errors
from cargobay.management.context import Management
from cargobay.management.security import Authenticated, Context, install
from cargobay.services.api_tokens import DEFAULT_TTL, MIN_TTL, ApiTokenView

PREFIX = "/auth/v1"

router = APIRouter(prefix="/tokens", tags=["Tokens"])


def _token_json(m: Management, request: Request, view: ApiTokenView) -> dict[str, Any]:
    return {
        "id": view.id,
        "href": f"{m.origin(request)}{PREFIX}/tokens/{view.id}",
        "createdDate": render_timestamp(view.created_at),
        "expirationDate": render_timestamp(view.expires_at),
    }


@router.get("/generate", operation_id="tokensGenerate")
async def generate(
    m: Context,
    who: Authenticated,
    ttl: Annotated[int | None, Query(ge=MIN_TTL, le=DEFAULT_TTL, description="lifetime in seconds")] = None,
) -> dict[str, str]:
    """A new bearer token for the caller in the chosen contract (default lifetime one year)."""
    return {"token": await m.api_tokens.generate(who, ttl)}


@router.get("", operation_id="tokensGet")
async def list_tokens(request: Request, m: Context, who: Authenticated) -> dict[str, Any]:
    return {"tokens": [_token_json(m, request, v) for v in await m.api_tokens.list(who)]}


@router.get("/{tokenId}", operation_id="tokensFindById")
async def get_token(request: Request, m: Context, who: Authenticated, tokenId: str) -> dict[str, Any]:
    return _token_json(m, request, await m.api_tokens.get(who, tokenId))


@router.delete("/{tokenId}", operation_id="tokensDeleteById")
async def delete_token(m: Context, who: Authenticated, tokenId: str) -> dict[str, bool]:
    await m.api_tokens.delete(who, tokenId)
    return {"success": True}


@router.delete("", operation_id="tokensDeleteByCriteria")
async def delete_by_criteria(
    m: Context,
    who: Authenticated,
    criteria: Annotated[str | None, Query(description="ALL, EXPIRED or CURRENT")] = None,
) -> dict[str, bool]:
    await m.api_tokens.delete_by_criteria(who, criteria)
    return {"success": True}


def build_auth_app(m: Management, authenticator: ManagementAuthenticator) -> FastAPI:
    app = FastAPI(
        title="Cargobay Auth API (IONOS-compatible)",
        version="1.0",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    errors.install(app)
    install(app, m, authenticator)
    app.include_router(router)
    return app
