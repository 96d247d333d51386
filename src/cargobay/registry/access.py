"""The one place where registry API requests are authenticated and authorised.

Order: find the registry, check the caller's address against its allowlist, check credentials
(Basic: a token of the registry or a contract user; Bearer: a JWT from /auth/token), then ask the
policy table for the actions allowed on the target. Nothing about the target is looked up before
access is granted, so a denial never reveals whether content exists.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session
from starlette.requests import Request

from cargobay.auth import credentials
from cargobay.auth.jwt_tokens import TokenSigner
from cargobay.auth.policy import Target, allowed_actions
from cargobay.auth.principals import GrantPrincipal, Principal, TokenPrincipal
from cargobay.config import Settings
from cargobay.db.engine import Database
from cargobay.domain.allowlist import client_address, is_allowed
from cargobay.domain.errors import OciCode, RegistryError
from cargobay.services.registries import RegistryInfo, lookup, lookup_by_id


@dataclass(frozen=True, slots=True)
class Access:
    principal: Principal
    registry: RegistryInfo | None
    actions: frozenset[str]
    bearer: bool


class AccessControl:
    def __init__(self, db: Database, signer: TokenSigner, settings: Settings) -> None:
        self.db = db
        self.signer = signer
        self.settings = settings

    def service(self, request: Request) -> str:
        return request.headers.get("host") or self.settings.listen

    def realm(self, request: Request) -> str:
        base = (
            self.settings.public_url.rstrip("/")
            if self.settings.public_url
            else (f"{request.url.scheme}://{self.service(request)}")
        )
        return f"{base}/auth/token"

    def client_ip(self, request: Request) -> str | None:
        peer = request.client.host if request.client else None
        return client_address(peer, request.headers.get("x-forwarded-for"), self.settings.trusted_proxies)

    def challenge(self, request: Request, scope: str | None, error: str | None = None) -> dict[str, str]:
        value = f'Bearer realm="{self.realm(request)}",service="{self.service(request)}"'
        if scope:
            value += f',scope="{scope}"'
        if error:
            value += f',error="{error}"'
        return {"WWW-Authenticate": value}

    def unauthorized(self, request: Request, scope: str | None, error: str | None = None) -> RegistryError:
        return RegistryError(
            OciCode.UNAUTHORIZED,
            "authentication required",
            None,
            headers=self.challenge(request, scope, error),
        )

    def check_address(self, request: Request, registry: RegistryInfo) -> None:
        """Refuse a caller whose address is outside the registry's ``apiSubnetAllowList``."""
        if not is_allowed(registry.allowlist, self.client_ip(request)):
            raise RegistryError(OciCode.DENIED, "access from this address is not allowed")

    async def check(
        self,
        request: Request,
        registry_name: str | None,
        repository: str | None,
        client_name: str | None,
        needed: frozenset[str],
        scope: str | None,
    ) -> Access:
        """Grant ``needed`` on the target or raise the right UNAUTHORIZED / DENIED error.

        ``registry_name`` None addresses no registry (GET /v2/, the path-style catalog); a registry
        that does not exist is answered exactly like bad credentials.
        """
        registry = await lookup(self.db, registry_name) if registry_name is not None else None
        if registry_name is not None and registry is None:
            raise self.unauthorized(request, scope)
        if registry is not None:
            self.check_address(request, registry)
        header = request.headers.get("authorization")
        principal: Principal | None = None
        bearer = credentials.parse_bearer(header)
        if bearer is not None:
            verified = self.signer.verify(bearer, self.service(request))
            if verified is None:
                raise self.unauthorized(request, scope, "invalid_token")
            principal = GrantPrincipal(verified.subject, verified.registry_ids, verified.grants)
        else:
            basic = credentials.parse_basic(header)
            if basic is not None:
                principal = await self.db.read(_authenticate, basic, registry)
        if principal is None:
            raise self.unauthorized(request, scope)
        if registry is None:
            if isinstance(principal, TokenPrincipal):
                # Nothing addressed (GET /v2/, the path-style catalog): a token is still held to
                # the allowlist of the registry it belongs to.
                own = await lookup_by_id(self.db, principal.registry_id)
                if own is not None:
                    self.check_address(request, own)
            return Access(principal, None, frozenset(), bearer is not None)
        target = Target(registry.id, registry.contract_number, repository, client_name)
        actions = allowed_actions(principal, target)
        if not needed <= actions:
            if bearer is not None:
                raise self.unauthorized(request, scope, "insufficient_scope")
            raise RegistryError(OciCode.DENIED, "requested access to the resource is denied")
        return Access(principal, registry, actions, bearer is not None)


def _authenticate(
    session: Session, basic: tuple[str, str], registry: RegistryInfo | None
) -> Principal | None:
    username, password = basic
    if credentials.is_user_login(username):
        contract = registry.contract_number if registry else None
        return credentials.authenticate_user(session, username, password, contract)
    if registry is not None:
        return credentials.authenticate_token(session, registry.id, username, password)
    return credentials.authenticate_token_anywhere(session, username, password)
