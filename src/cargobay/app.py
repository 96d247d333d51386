"""Builds the ASGI application from its parts (explicit wiring, no discovery).

A small prefix dispatcher sits in front so the registry hot path (/v2/) pays for no framework
routing: /v2/ and /auth/token go to the registry layer, /containerregistries/ to the management
API, the rest to a small Starlette app (health, readiness, metrics).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cargobay.config import Settings
from cargobay.logs import configure_logging, get_logger
from cargobay.runtime import Runtime, build_runtime

log = get_logger("cargobay.app")


class CargobayApp:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.runtime: Runtime | None = None
        self._routes: list[tuple[str, ASGIApp]] = []
        self._fallback: ASGIApp = _not_ready

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        path: str = scope["path"]
        for prefix, app in self._routes:
            if path.startswith(prefix):
                await app(scope, receive, send)
                return
        await self._fallback(scope, receive, send)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        message = await receive()
        assert message["type"] == "lifespan.startup"
        try:
            async with contextlib.AsyncExitStack() as stack:
                await stack.enter_async_context(self._serve())
                await send({"type": "lifespan.startup.complete"})
                message = await receive()
                assert message["type"] == "lifespan.shutdown"
        except Exception as exc:
            log.exception("startup_failed")
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.shutdown.complete"})

    @contextlib.asynccontextmanager
    async def _serve(self) -> AsyncIterator[None]:
        # Migrations run in `serve` before workers start; workers only connect.
        runtime = build_runtime(self.settings, migrate=False)
        self.runtime = runtime
        from cargobay.management.app import ManagementApp
        from cargobay.registry.app import build_registry_app

        registry = build_registry_app(runtime)
        management = ManagementApp(runtime)
        self._routes = [
            ("/v2", registry),
            ("/auth/token", registry),
            ("/containerregistries", management.api),
            ("/auth/v1", management.auth),
        ]
        self._fallback = _misc_app(runtime)
        from cargobay.worker import in_process_jobs

        async with registry.running(), in_process_jobs(runtime):
            yield
        await runtime.close()


async def _not_ready(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await PlainTextResponse("starting", status_code=503)(scope, receive, send)


def _misc_app(runtime: Runtime) -> Starlette:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        from sqlalchemy import text

        try:
            await runtime.db.read(lambda s: s.execute(text("SELECT 1")).scalar())
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
        return JSONResponse({"status": "ok"})

    async def not_found(request: Request, exc: Any) -> Response:
        return JSONResponse({"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]}, 404)

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/readyz", readyz)],
        exception_handlers={404: not_found},
    )


def create_app(settings: Settings | None = None) -> CargobayApp:
    """uvicorn factory: ``uvicorn --factory cargobay.app:create_app``."""
    settings = settings or Settings()
    configure_logging(settings.log_level)
    return CargobayApp(settings)
