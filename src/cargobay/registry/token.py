"""The Docker token service at /auth/token: Basic credentials in, a short-lived JWT out.

The JWT grants the subset of the requested scopes that the credentials allow (possibly none); what
may be granted is decided by ``auth.registry_access``. A scope naming something that is not a valid
repository name (``team/../other/app``) is never granted.
"""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import Response

from cargobay import observability, outages
from cargobay.auth import credentials
from cargobay.auth.registry_access import AccessRefused, Refusal, Wanted
from cargobay.domain.errors import DomainError, OciCode, RegistryError
from cargobay.domain.names import is_repository_name
from cargobay.domain.scopes import ResourceScope, parse_resource_scopes
from cargobay.logs import get_logger
from cargobay.registry.access import AccessControl
from cargobay.registry.http import error_response, json_response, read_limited, registry_error
from cargobay.registry.routing import address, registry_from_host

log = get_logger("cargobay.registry")
_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="cargobay"'}


class TokenEndpoint:
    def __init__(self, gate: AccessControl) -> None:
        self.gate = gate
        self.settings = gate.settings

    async def __call__(self, request: Request) -> Response:
        try:
            return await self._issue(request)
        except RegistryError as exc:
            return error_response(exc)
        except DomainError as exc:
            return error_response(registry_error(exc))
        except Exception as exc:
            fault = outages.answer(exc, self.gate.guard, log, path="/auth/token")
            if fault is None:
                raise
            error = registry_error(fault)
            error.headers["Retry-After"] = str(self.settings.retry_after_seconds)
            return error_response(error)

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
            raise RegistryError(OciCode.UNAUTHORIZED, "credentials required", headers=_BASIC_CHALLENGE)
        host_registry = registry_from_host(service, self.settings.registry_domain)
        asked = parse_resource_scopes(scope_values)
        wanted = wanted_scopes(asked, host_registry)
        try:
            issued = await self.gate.access.issue(
                login[0], login[1], wanted, host_registry, self.gate.client_ip(request), service
            )
        except AccessRefused as exc:
            observability.TOKEN_REQUESTS.labels("refused").inc()
            if exc.refusal is Refusal.ADDRESS:
                raise RegistryError(OciCode.DENIED, "access from this address is not allowed") from None
            raise RegistryError(
                OciCode.UNAUTHORIZED, "invalid credentials", headers=_BASIC_CHALLENGE
            ) from None
        observability.TOKEN_REQUESTS.labels("issued").inc()
        observability.TOKEN_SCOPES.labels("granted").inc(issued.granted)
        observability.TOKEN_SCOPES.labels("denied").inc(max(0, len(asked) - issued.granted))
        facts = observability.facts()
        facts.principal = f"{'user' if '@' in login[0] else 'token'}:{login[0]}"
        return json_response(
            {
                "token": issued.token,
                "access_token": issued.token,
                "expires_in": issued.expires_in,
                "issued_at": issued.issued_at,
            }
        )


def wanted_scopes(scopes: list[ResourceScope], host_registry: str | None) -> list[Wanted]:
    """The scopes that name something grantable: a valid repository of some registry, or the catalog."""
    result: list[Wanted] = []
    for scope in scopes:
        if scope.type == "repository":
            addr = address(scope.name, host_registry)
            if addr is not None and is_repository_name(addr.repository):
                result.append(Wanted(scope, addr.registry, addr.repository))
        elif scope.type == "registry" and scope.name == "catalog":
            result.append(Wanted(scope, host_registry, None))
    return result


async def _oauth_form(request: Request) -> dict[str, list[str]]:
    """The urlencoded body of an OAuth2 token request (containerd's POST); nothing else is parsed."""
    body = await read_limited(request, 64 * 1024)
    return parse_qs(body.decode("latin-1"), keep_blank_values=True)


def _first(form: dict[str, list[str]], key: str) -> str:
    values = form.get(key)
    return values[0] if values else ""
