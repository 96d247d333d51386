"""The Docker token service at /auth/token: Basic credentials in, a short-lived JWT out.

The JWT grants the subset of the requested scopes that the credentials allow (possibly none).
Tokens that are expired, disabled or deleted are refused here at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs

from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response

from cargobay.auth import credentials
from cargobay.auth.jwt_tokens import TokenSigner
from cargobay.auth.policy import Target, allowed_actions
from cargobay.auth.principals import Principal, TokenPrincipal, UserPrincipal
from cargobay.config import Settings
from cargobay.db.engine import Database
from cargobay.db.models import Registry
from cargobay.domain.allowlist import client_address, is_allowed
from cargobay.domain.errors import DomainError, OciCode, RegistryError
from cargobay.domain.scopes import ResourceScope, parse_resource_scopes
from cargobay.registry.http import error_response, json_response, read_limited, registry_error
from cargobay.registry.routing import address, registry_from_host
from cargobay.services.registries import RegistryInfo, lookup


@dataclass(frozen=True, slots=True)
class _Wanted:
    scope: ResourceScope
    registry: str | None  # registry name; None = every registry the caller may list
    repository: str | None


class TokenEndpoint:
    def __init__(self, db: Database, signer: TokenSigner, settings: Settings) -> None:
        self.db = db
        self.signer = signer
        self.settings = settings

    async def __call__(self, request: Request) -> Response:
        try:
            return await self._issue(request)
        except RegistryError as exc:
            return error_response(exc)
        except DomainError as exc:
            return error_response(registry_error(exc))

    async def _issue(self, request: Request) -> Response:
        if request.method not in ("GET", "POST"):
            raise RegistryError(OciCode.UNSUPPORTED, "use GET or POST", status=405)
        params = request.query_params
        scope_values = params.getlist("scope")
        service = params.get("service") or request.headers.get("host") or self.settings.listen
        login = credentials.parse_basic(request.headers.get("authorization"))
        if request.method == "POST":
            form = await _oauth_form(request)
            service = _first(form, "service") or service
            scope_values = form.get("scope") or scope_values
            if _first(form, "grant_type") == "password" and _first(form, "username"):
                login = (_first(form, "username"), _first(form, "password"))
        if login is None:
            raise RegistryError(
                OciCode.UNAUTHORIZED,
                "credentials required",
                headers={"WWW-Authenticate": 'Basic realm="cargobay"'},
            )
        host_registry = registry_from_host(service, self.settings.registry_domain)
        wanted = self._wanted(parse_resource_scopes(scope_values), host_registry)
        peer = request.client.host if request.client else None
        ip = client_address(peer, request.headers.get("x-forwarded-for"), self.settings.trusted_proxies)
        username, password = login
        registries: dict[str, RegistryInfo] = {}
        # The registry named by the service (host-style) is checked against its allowlist even when
        # no scope is asked for (a login).
        names = {w.registry for w in wanted if w.registry is not None}
        for name in names | ({host_registry} if host_registry else set()):
            info = await lookup(self.db, name)
            if info is not None:
                registries[name] = info

        def work(session: Session) -> tuple[Principal | None, list[ResourceScope], list[str], bool]:
            return _grant(session, username, password, wanted, registries, ip, host_registry)

        principal, grants, registry_ids, denied_address = await self.db.read(work)
        if denied_address:
            raise RegistryError(OciCode.DENIED, "access from this address is not allowed")
        if principal is None:
            raise RegistryError(
                OciCode.UNAUTHORIZED,
                "invalid credentials",
                headers={"WWW-Authenticate": 'Basic realm="cargobay"'},
            )
        if isinstance(principal, UserPrincipal):
            subject = f"user:{principal.user_id}"
        elif isinstance(principal, TokenPrincipal):
            subject = f"token:{principal.token_id}"
        else:  # a bearer JWT cannot be exchanged for another
            raise RegistryError(OciCode.UNAUTHORIZED, "invalid credentials")
        issued = self.signer.issue(subject, service, registry_ids, grants)
        return json_response(
            {
                "token": issued.token,
                "access_token": issued.token,
                "expires_in": issued.expires_in,
                "issued_at": issued.issued_at,
            }
        )

    def _wanted(self, scopes: list[ResourceScope], host_registry: str | None) -> list[_Wanted]:
        result: list[_Wanted] = []
        for scope in scopes:
            if scope.type == "repository":
                addr = address(scope.name, host_registry)
                if addr is not None:
                    result.append(_Wanted(scope, addr.registry, addr.repository))
            elif scope.type == "registry" and scope.name == "catalog":
                result.append(_Wanted(scope, host_registry, None))
        return result


async def _oauth_form(request: Request) -> dict[str, list[str]]:
    """The urlencoded body of an OAuth2 token request (containerd's POST); nothing else is parsed."""
    body = await read_limited(request, 64 * 1024)
    return parse_qs(body.decode("latin-1"), keep_blank_values=True)


def _first(form: dict[str, list[str]], key: str) -> str:
    values = form.get(key)
    return values[0] if values else ""


def _grant(
    session: Session,
    username: str,
    password: str,
    wanted: list[_Wanted],
    registries: dict[str, RegistryInfo],
    ip: str | None,
    host_registry: str | None,
) -> tuple[Principal | None, list[ResourceScope], list[str], bool]:
    """Authenticate, and grant the subset of the wanted scopes that the credentials allow."""
    if any(not is_allowed(r.allowlist, ip) for r in registries.values()):
        return None, [], [], True

    is_user = credentials.is_user_login(username)
    principals: dict[str, Principal | None] = {}

    def principal_for(registry: RegistryInfo) -> Principal | None:
        if registry.id not in principals:
            if is_user:
                principals[registry.id] = credentials.authenticate_user(
                    session, username, password, registry.contract_number
                )
            else:
                principals[registry.id] = credentials.authenticate_token(
                    session, registry.id, username, password
                )
        return principals[registry.id]

    grants: list[ResourceScope] = []
    registry_ids: set[str] = set()
    identified: Principal | None = None
    for item in wanted:
        if item.registry is None:  # catalog over every registry the caller may list
            principal = identified or _anywhere(session, username, password, is_user)
            if principal is None:
                continue
            identified = principal
            for registry in _listable(session, principal):
                if is_allowed(registry.allowlist, ip):
                    registry_ids.add(registry.id)
            if registry_ids:
                grants.append(ResourceScope("registry", "catalog", frozenset({"*"})))
            continue
        found = registries.get(item.registry)
        if found is None:
            continue
        registry = found
        principal = principal_for(registry)
        if principal is None:
            continue
        identified = identified or principal
        target = Target(registry.id, registry.contract_number, item.repository, item.scope.name)
        allowed = allowed_actions(principal, target)
        if item.repository is None:
            actions = frozenset({"*"}) if "catalog" in allowed else frozenset()
        else:
            actions = item.scope.actions & allowed
        if actions:
            grants.append(ResourceScope(item.scope.type, item.scope.name, actions))
            registry_ids.add(registry.id)
    if identified is None:
        # A registry's own host (host-style addressing) takes only its own credentials, and a host
        # naming no registry takes none; path-style names no registry, so any registry's will do.
        if host_registry is None:
            identified = _anywhere(session, username, password, is_user)
        elif (home := registries.get(host_registry)) is not None:
            identified = principal_for(home)
    if isinstance(identified, TokenPrincipal):
        own = session.get(Registry, identified.registry_id)
        if own is not None and not is_allowed(own.allowlist or (), ip):
            return None, [], [], True  # a token is held to its own registry's allowlist
    return identified, grants, sorted(registry_ids), False


def _anywhere(session: Session, username: str, password: str, is_user: bool) -> Principal | None:
    if is_user:
        return credentials.authenticate_user(session, username, password)
    return credentials.authenticate_token_anywhere(session, username, password)


def _listable(session: Session, principal: Principal) -> list[RegistryInfo]:
    if isinstance(principal, UserPrincipal):
        rows = session.execute(
            select(Registry.id, Registry.name, Registry.contract_number, Registry.allowlist).where(
                Registry.contract_number == principal.contract_number
            )
        )
        return [RegistryInfo(r[0], r[1], r[2], tuple(r[3] or ())) for r in rows]
    if isinstance(principal, TokenPrincipal) and any(s.type == "registry" for s in principal.scopes):
        registry = session.get(Registry, principal.registry_id)
        if registry is not None:
            return [
                RegistryInfo(
                    registry.id, registry.name, registry.contract_number, tuple(registry.allowlist or ())
                )
            ]
    return []
