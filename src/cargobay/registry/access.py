"""The registry layer's side of access control: read credentials, address and service off the
request, ask ``auth.registry_access``, and answer its refusals as the distribution spec does
(a Bearer challenge naming the scope to ask for, or a denial)."""

from __future__ import annotations

from starlette.requests import Request

from cargobay import observability
from cargobay.auth.principals import GrantPrincipal, Principal, TokenPrincipal
from cargobay.auth.registry_access import Access, AccessRefused, Caller, Refusal, RegistryAccess
from cargobay.config import Settings
from cargobay.domain.errors import OciCode, RegistryError
from cargobay.outages import DiskGuard


def who(principal: Principal) -> str:
    """``kind:name`` of a caller for the access log (never a secret)."""
    if isinstance(principal, TokenPrincipal):
        return f"token:{principal.name}"
    if isinstance(principal, GrantPrincipal):
        return f"jwt:{principal.subject}"
    return f"user:{principal.email}"


_DENIED = {
    Refusal.ADDRESS: "access from this address is not allowed",
    Refusal.DENIED: "requested access to the resource is denied",
}


class AccessControl:
    def __init__(self, access: RegistryAccess, settings: Settings, guard: DiskGuard) -> None:
        self.access = access
        self.settings = settings
        self.guard = guard

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
        return self.access.client_address(peer, request.headers.get("x-forwarded-for"))

    def caller(self, request: Request) -> Caller:
        return Caller(request.headers.get("authorization"), self.client_ip(request), self.service(request))

    def challenge(self, request: Request, scope: str | None, error: str | None = None) -> dict[str, str]:
        value = f'Bearer realm="{self.realm(request)}",service="{self.service(request)}"'
        if scope:
            value += f',scope="{scope}"'
        if error:
            value += f',error="{error}"'
        return {"WWW-Authenticate": value}

    def refused(self, request: Request, exc: AccessRefused, scope: str | None) -> RegistryError:
        """The answer to a refusal: 401 with a challenge for credentials, 403 for a denial."""
        refusal = exc.refusal
        if refusal in _DENIED:
            return RegistryError(OciCode.DENIED, _DENIED[refusal])
        error = None if refusal is Refusal.UNAUTHENTICATED else refusal.value
        return RegistryError(
            OciCode.UNAUTHORIZED,
            "authentication required",
            None,
            headers=self.challenge(request, scope, error),
        )

    async def check(
        self,
        request: Request,
        registry_name: str | None,
        repository: str | None,
        client_name: str | None,
        needed: frozenset[str],
        scope: str | None,
    ) -> Access:
        """Grant ``needed`` on the target or raise the right UNAUTHORIZED / DENIED error."""
        facts = observability.facts()
        facts.registry = registry_name
        try:
            access = await self.access.check(
                self.caller(request), registry_name, repository, client_name, needed
            )
        except AccessRefused as exc:
            raise self.refused(request, exc, scope) from None
        facts.principal = who(access.principal)
        return access
