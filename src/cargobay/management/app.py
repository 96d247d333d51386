"""The management API application: FastAPI routers behind raw-path routing.

Repository names and digests arrive percent-encoded (``team%2Fapp``, ``sha256%3A…``). Frameworks
decode ``%2F`` before routing, which would split one repository segment in two; so requests are
routed on the raw path (split on literal ``/``) and each path parameter is decoded afterwards.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from starlette.types import ASGIApp, Receive, Scope, Send

from cargobay import observability
from cargobay.auth.management import ManagementAuthenticator
from cargobay.domain.errors import StorageFull
from cargobay.logs import get_logger
from cargobay.management import errors
from cargobay.management.auth_api import PREFIX as AUTH_PREFIX
from cargobay.management.auth_api import build_auth_app
from cargobay.management.context import PREFIX, Management
from cargobay.management.routes import (
    artifacts,
    extensions,
    garbage_collection,
    registries,
    repositories,
    tokens,
    vulnerabilities,
)
from cargobay.management.security import install as install_dependencies
from cargobay.outages import DiskGuard
from cargobay.runtime import Runtime

log = get_logger("cargobay.management")

API_VERSION = "1.2.1"
DESCRIPTION = (
    "Self-hosted, wire-compatible implementation of the IONOS Cloud Container Registry API. "
    "Authenticate with Basic user@domain:password or with a Bearer token from GET /auth/v1/tokens/generate; "
    "the X-Contract-Number header picks the contract of a user with several."
)


class RawPathRouting:
    """Mount ``app`` under ``prefix`` and let it route on the undecoded path; while the disk is full,
    writes are refused before they start (what space is left is kept for deletes)."""

    def __init__(self, app: ASGIApp, prefix: str, guard: DiskGuard, retry_after: int) -> None:
        self.app = app
        self.prefix = prefix
        self.guard = guard
        self.retry_after = retry_after

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("POST", "PUT", "PATCH") and self.guard.full:
            response = errors.domain_error_response(StorageFull(), retry_after=self.retry_after)
            await response(scope, receive, send)
            return
        raw = scope.get("raw_path")
        path = raw.split(b"?", 1)[0].decode("latin-1") if raw else scope["path"]
        routed = {**scope, "path": path, "root_path": scope.get("root_path", "") + self.prefix}
        try:
            await self.app(routed, receive, send)
        finally:
            route = routed.get("route")  # the matched operation's path template
            observability.facts().route = self.prefix + route.path if route is not None else self.prefix


def build_api(m: Management, authenticator: ManagementAuthenticator) -> FastAPI:
    app = FastAPI(
        title="Cargobay Container Registry API (IONOS-compatible)",
        version=API_VERSION,
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
        redirect_slashes=False,
    )
    errors.install(app)
    install_dependencies(app, m, authenticator)
    operations = (
        registries,
        tokens,
        repositories,
        artifacts,
        vulnerabilities,
        garbage_collection,
        extensions,
    )
    for module in operations:
        app.include_router(module.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                servers=[{"url": PREFIX}],
            )
            _document_locations(schema, m.settings.locations)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.root_path_in_servers = False
    return app


def _document_locations(schema: dict[str, Any], locations: list[str]) -> None:
    for name in ("PostRegistryProperties",):
        prop = (
            schema.get("components", {})
            .get("schemas", {})
            .get(name, {})
            .get("properties", {})
            .get("location")
        )
        if prop is not None:
            prop["enum"] = list(locations)


class ManagementApp:
    """The /containerregistries and /auth/v1 applications."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        services = runtime.services
        authenticator: ManagementAuthenticator = runtime.auth.management
        self.context = Management(
            settings=runtime.settings,
            registries=services.registries,
            tokens=services.tokens,
            repositories=services.repositories,
            artifacts=services.artifacts,
            api_tokens=services.api_tokens,
            vulnerabilities=services.vulnerabilities,
            gc=services.gc,
        )
        api = build_api(self.context, authenticator)
        auth = build_auth_app(self.context, authenticator)
        for app in (api, auth):  # what the fault handlers (management/errors.py) need
            app.state.guard = runtime.guard
            app.state.retry_after = runtime.settings.retry_after_seconds
        self.api = RawPathRouting(api, PREFIX, runtime.guard, runtime.settings.retry_after_seconds)
        self.auth = RawPathRouting(auth, AUTH_PREFIX, runtime.guard, runtime.settings.retry_after_seconds)
