"""The registry ASGI application: routes /v2/ requests through the access check to the endpoints."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from sqlalchemy.orm import Session
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cargobay.auth.jwt_tokens import TokenSigner, load_or_create_key
from cargobay.auth.policy import catalog_filter
from cargobay.auth.principals import Principal, TokenPrincipal, UserPrincipal
from cargobay.db.models import Token
from cargobay.domain.allowlist import is_allowed
from cargobay.domain.digests import is_digest
from cargobay.domain.errors import DomainError, OciCode, RegistryError
from cargobay.domain.names import check_repository_name
from cargobay.domain.scopes import glob_matches, scopes_from_json
from cargobay.logs import get_logger
from cargobay.registry.access import AccessControl
from cargobay.registry.blobs import BlobEndpoints
from cargobay.registry.context import Call
from cargobay.registry.http import (
    API_VERSION_HEADER,
    error_response,
    integrity_failure,
    json_response,
    registry_error,
)
from cargobay.registry.manifests import ManifestEndpoints, next_link, parse_page_size
from cargobay.registry.routing import METHODS, Endpoint, address, match, registry_from_host
from cargobay.registry.token import TokenEndpoint
from cargobay.runtime import Runtime
from cargobay.services.blobs import BlobService
from cargobay.services.catalog import CatalogSource, list_catalog
from cargobay.services.manifests import ManifestService
from cargobay.services.stats import PullRecorder
from cargobay.services.uploads import UploadService
from cargobay.storage.base import IntegrityError, ObjectNotFound

log = get_logger("cargobay.registry")

# The actions each method needs; POST/PATCH/PUT of content need push (and pull, as clients check first).
_NEEDED = {"GET": "pull", "HEAD": "pull", "POST": "push", "PATCH": "push", "PUT": "push", "DELETE": "delete"}
# An upload session is part of a push whatever the method: reading its progress or cancelling it is
# not pulling or deleting content (Quay asks the same; distribution goes by the method alone).
_NEEDED_BY_ENDPOINT = {Endpoint.UPLOAD: "push"}


class RegistryApp:
    def __init__(self, runtime: Runtime) -> None:
        settings = runtime.settings
        self.runtime = runtime
        self.settings = settings
        signer = TokenSigner(load_or_create_key(settings.data_dir / "jwt.key"), settings.token_ttl_seconds)
        self.access = AccessControl(runtime.db, signer, settings)
        self.stats = PullRecorder(runtime.db)
        self.uploads = UploadService(runtime.db, runtime.store, settings.upload_expiry_seconds)
        self.blob_endpoints = BlobEndpoints(
            BlobService(runtime.db, runtime.store), self.uploads, self._host_registry
        )
        self.manifest_endpoints = ManifestEndpoints(ManifestService(runtime.db, runtime.sealer), self.stats)
        self.token_endpoint = TokenEndpoint(runtime.db, signer, settings)
        self._handlers: dict[Endpoint, Callable[[Call], Awaitable[Response]]] = {
            Endpoint.MANIFEST: self.manifest_endpoints.manifest,
            Endpoint.TAGS: self.manifest_endpoints.tags,
            Endpoint.REFERRERS: self.manifest_endpoints.referrers,
            Endpoint.BLOB: self.blob_endpoints.blob,
            Endpoint.UPLOADS: self.blob_endpoints.start,
            Endpoint.UPLOAD: self.blob_endpoints.upload,
        }

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Background duties of a serving process: flushing pull counts (upload expiry is a job)."""
        async with self.stats.running():
            yield

    def _host_registry(self, call_or_request: Call | Request) -> str | None:
        request = call_or_request.request if isinstance(call_or_request, Call) else call_or_request
        return registry_from_host(request.headers.get("host"), self.settings.registry_domain)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        if scope["path"].startswith("/auth/token"):
            response = await self.token_endpoint(request)
        else:
            response = await self._v2(request)
        await response(scope, receive, send)

    async def _v2(self, request: Request) -> Response:
        head = request.method == "HEAD"
        try:
            return await self._dispatch(request)
        except RegistryError as exc:
            return error_response(exc, head)
        except DomainError as exc:
            return error_response(registry_error(exc), head)
        except ObjectNotFound as exc:
            # A row points at bytes the store no longer has: say so, never a bare 500 page.
            log.error("stored_object_missing", path=request.url.path, key=str(exc))
            return error_response(RegistryError(OciCode.UNKNOWN, "stored data is missing"), head)
        except Exception:
            log.exception("registry_request_failed", method=request.method, path=request.url.path)
            return error_response(RegistryError(OciCode.UNKNOWN, "internal error"), head)

    async def _dispatch(self, request: Request) -> Response:
        route = match(request.url.path)
        if route is None:
            raise RegistryError(OciCode.NAME_UNKNOWN, "no such endpoint", status=404)
        method = request.method
        if method not in METHODS[route.endpoint]:
            raise RegistryError(OciCode.UNSUPPORTED, f"{method} is not supported here", status=405)
        if route.endpoint is Endpoint.BASE:
            # A login checks the credentials alone; at a registry's own host (host-style) they must
            # be good for that registry, and its allowlist applies.
            await self.access.check(request, self._host_registry(request), None, None, frozenset(), None)
            return json_response({}, headers=API_VERSION_HEADER)
        if route.endpoint is Endpoint.CATALOG:
            return await self._catalog(request)
        host_registry = self._host_registry(request)
        addr = address(route.name, host_registry)
        if addr is None:
            raise RegistryError(OciCode.NAME_INVALID, "invalid repository name", {"name": route.name[:300]})
        check_repository_name(addr.repository)
        needed = _NEEDED_BY_ENDPOINT.get(route.endpoint) or _NEEDED[method]
        scope_actions = "pull,push" if needed == "push" else needed
        access = await self.access.check(
            request,
            addr.registry,
            addr.repository,
            addr.client_name,
            frozenset({needed}),
            f"repository:{addr.client_name}:{scope_actions}",
        )
        call = Call(request, route, addr, access)
        try:
            return await self._handlers[route.endpoint](call)
        except IntegrityError as exc:
            raise integrity_failure(
                call.registry, route.param if is_digest(route.param) else None, exc
            ) from None

    async def _catalog(self, request: Request) -> Response:
        host_registry = self._host_registry(request)
        access = await self.access.check(
            request,
            host_registry,
            None,
            None,
            frozenset({"catalog"}) if host_registry else frozenset(),
            "registry:catalog:*",
        )
        params = request.query_params
        n = parse_page_size(params.get("n"))
        last = params.get("last")
        sources = await self._catalog_sources(
            access.principal,
            access.registry.id if access.registry else None,
            host_registry is None,
            self.access.client_ip(request),
        )
        if n == 0:
            return json_response({"repositories": []})
        names, more = await list_catalog(self.runtime.db, sources, n, last)
        headers = next_link("/v2/_catalog", n, names[-1]) if more and n and names else {}
        return json_response({"repositories": names}, headers=headers)

    async def _catalog_sources(
        self, principal: Principal, registry_id: str | None, path_style: bool, client_ip: str | None
    ) -> list[CatalogSource]:
        """The registries the principal may list; one whose allowlist excludes the caller is left out
        (the path-style catalog spans registries, so no single allowlist was checked before)."""

        def work(session: Session) -> list[CatalogSource]:
            from sqlalchemy import select

            from cargobay.db.models import Registry

            query = select(Registry.id, Registry.name, Registry.contract_number, Registry.allowlist)
            if registry_id is not None:
                query = query.where(Registry.id == registry_id)
            sources: list[CatalogSource] = []
            for rid, name, contract, allowlist in session.execute(query):
                if not is_allowed(allowlist or (), client_ip):
                    continue
                visible = _visibility(session, principal, rid, contract)
                if visible is not None:
                    sources.append(CatalogSource(rid, f"{name}/" if path_style else "", visible))
            return sources

        return await self.runtime.db.read(work)


def _visibility(
    session: Session, principal: Principal, registry_id: str, contract: int
) -> Callable[[str], bool] | None:
    if isinstance(principal, UserPrincipal):
        return catalog_filter(principal, registry_id) if principal.contract_number == contract else None
    if isinstance(principal, TokenPrincipal):
        if principal.registry_id != registry_id or not any(s.type == "registry" for s in principal.scopes):
            return None
        return catalog_filter(principal, registry_id)
    # What is left is a GrantPrincipal (a bearer JWT).
    if registry_id not in principal.registry_ids or not any(
        g.type == "registry" and g.name == "catalog" for g in principal.grants
    ):
        return None
    kind, _, ident = principal.subject.partition(":")
    if kind == "token":
        token = session.get(Token, ident)
        if token is None:
            return None
        globs = [s.name for s in scopes_from_json(token.scopes) if s.type == "registry"]
        return lambda name: any(glob_matches(g, name) for g in globs)
    return lambda name: True


def build_registry_app(runtime: Runtime) -> RegistryApp:
    return RegistryApp(runtime)
