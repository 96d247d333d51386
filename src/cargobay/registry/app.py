"""The registry ASGI application: routes /v2/ requests through the access check to the endpoints."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from cargobay import observability, outages
from cargobay.auth.registry_access import AccessRefused
from cargobay.domain.digests import is_digest
from cargobay.domain.errors import DomainError, OciCode, RegistryError, StorageFull
from cargobay.domain.names import check_repository_name
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
from cargobay.registry.routing import METHODS, TEMPLATES, Endpoint, address, match, registry_from_host
from cargobay.registry.token import TokenEndpoint
from cargobay.runtime import Runtime
from cargobay.services.catalog import CatalogSource
from cargobay.storage.base import IntegrityError, ObjectNotFound

log = get_logger("cargobay.registry")

# The actions each method needs; POST/PATCH/PUT of content need push (and pull, as clients check first).
_NEEDED = {"GET": "pull", "HEAD": "pull", "POST": "push", "PATCH": "push", "PUT": "push", "DELETE": "delete"}
# An upload session is part of a push whatever the method: reading its progress or cancelling it is
# not pulling or deleting content (Quay asks the same; distribution goes by the method alone).
_NEEDED_BY_ENDPOINT = {Endpoint.UPLOAD: "push"}
_WRITES = frozenset({"POST", "PUT", "PATCH"})


class RegistryApp:
    def __init__(self, runtime: Runtime) -> None:
        services = runtime.services
        self.runtime = runtime
        self.settings = runtime.settings
        self.access = AccessControl(runtime.auth.registry, self.settings, runtime.guard)
        self.stats = services.pulls
        self.blob_endpoints = BlobEndpoints(
            services.blobs, services.uploads, self.access, self._host_registry
        )
        self.manifest_endpoints = ManifestEndpoints(services.manifests, self.stats)
        self.token_endpoint = TokenEndpoint(self.access)
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
            observability.facts().route = "/auth/token"
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
            return self._error(registry_error(exc), head)
        except ObjectNotFound as exc:
            # A row points at bytes the store no longer has: say so, never a bare 500 page.
            log.error("stored_object_missing", path=request.url.path, key=str(exc))
            return error_response(RegistryError(OciCode.UNKNOWN, "stored data is missing"), head)
        except Exception as exc:
            fault = outages.answer(exc, self.runtime.guard, log, method=request.method, path=request.url.path)
            if fault is not None:
                return self._error(registry_error(fault), head)
            log.exception("registry_request_failed", method=request.method, path=request.url.path)
            return error_response(RegistryError(OciCode.UNKNOWN, "internal error"), head)

    def _error(self, error: RegistryError, head: bool) -> Response:
        """An error response; a passing fault (503, 507) says when to retry."""
        if error.status in (503, 507):
            error.headers["Retry-After"] = str(self.settings.retry_after_seconds)
        return error_response(error, head)

    async def _dispatch(self, request: Request) -> Response:
        scope = request.scope  # the path without building a URL object (~10% of a manifest GET)
        route = match(scope.get("root_path", "") + scope["path"])
        if route is None:
            raise RegistryError(OciCode.NAME_UNKNOWN, "no such endpoint", status=404)
        observability.facts().route = TEMPLATES[route.endpoint]
        if request.method in _WRITES and self.runtime.guard.full:
            raise StorageFull()  # what space is left is kept for the deletes that free some
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
        scope = "registry:catalog:*"
        access = await self.access.check(
            request,
            host_registry,
            None,
            None,
            frozenset({"catalog"}) if host_registry else frozenset(),
            scope,
        )
        params = request.query_params
        n = parse_page_size(params.get("n"))
        last = params.get("last")
        path_style = host_registry is None
        # Registries are read from the one `last` names; from the root of its "-" chain, in fact: a
        # registry `ab` sorts after `ab-c` in the catalog, though before it by name.
        start = last.partition("/")[0].partition("-")[0] if path_style and last else None
        try:
            listings = await self.access.access.listings(access, self.access.client_ip(request), start)
        except AccessRefused as exc:
            raise self.access.refused(request, exc, scope) from None
        if n == 0:
            return json_response({"repositories": []})

        async def sources() -> AsyncIterator[CatalogSource]:
            async for x in listings:
                yield CatalogSource(x.registry.id, f"{x.registry.name}/" if path_style else "", x.visible)

        names, more = await self.runtime.services.catalog.list(sources(), n, last)
        headers = next_link("/v2/_catalog", n, names[-1]) if more and n and names else {}
        return json_response({"repositories": names}, headers=headers)


def build_registry_app(runtime: Runtime) -> RegistryApp:
    return RegistryApp(runtime)
