"""The authentication dependency of every management operation.

The two security schemes are declared for the OpenAPI document only (as the IONOS SDK names them);
the header is checked by ``ManagementAuthenticator``, which answers with the IONOS error body.
"""

from collections.abc import Awaitable, Callable

from fastapi import Security
from fastapi.security import HTTPBasic, HTTPBearer
from starlette.requests import Request

from cargobay import observability
from cargobay.auth.management import Caller, ManagementAuthenticator


class _DeclaredBasic(HTTPBasic):
    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


class _DeclaredBearer(HTTPBearer):
    async def __call__(self, request: Request) -> None:  # type: ignore[override]
        return None


basic_auth = _DeclaredBasic(
    scheme_name="basicAuth", description="user@domain and password; X-Contract-Number picks the contract"
)
token_auth = _DeclaredBearer(scheme_name="tokenAuth", description="a token from GET /auth/v1/tokens/generate")

CallerDependency = Callable[..., Awaitable[Caller]]


def caller_dependency(authenticator: ManagementAuthenticator) -> CallerDependency:
    async def caller(
        request: Request, _basic: None = Security(basic_auth), _bearer: None = Security(token_auth)
    ) -> Caller:
        authenticated = await authenticator.authenticate(
            request.headers.get("authorization"), request.headers.get("x-contract-number")
        )
        observability.facts().principal = f"user:{authenticated.principal.email}"
        return authenticated

    return caller
