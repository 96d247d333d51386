"""The dependencies of every management operation: the caller, and the services it is answered with.

The two security schemes are declared for the OpenAPI document only (as the IONOS SDK names them);
the header is checked by ``ManagementAuthenticator``, which answers with the IONOS error body. Both the
authenticator and the ``Management`` context are set on the application's state by ``install``.
"""

from typing import Annotated

from fastapi import Depends, FastAPI, Security
from fastapi.security import HTTPBasic, HTTPBearer
from starlette.requests import Request

from cargobay import observability
from cargobay.auth.management import Caller, ManagementAuthenticator
from cargobay.management.context import Management


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


def install(app: FastAPI, context: Management, authenticator: ManagementAuthenticator) -> None:
    app.state.management = context
    app.state.authenticator = authenticator


def management(request: Request) -> Management:
    context: Management = request.app.state.management
    return context


async def caller(
    request: Request, _basic: None = Security(basic_auth), _bearer: None = Security(token_auth)
) -> Caller:
    authenticator: ManagementAuthenticator = request.app.state.authenticator
    authenticated = await authenticator.authenticate(
        request.headers.get("authorization"), request.headers.get("x-contract-number")
    )
    observability.facts().principal = f"user:{authenticated.principal.email}"
    return authenticated


Context = Annotated[Management, Depends(management)]
Authenticated = Annotated[Caller, Depends(caller)]
