"""Builds the ASGI application from its parts (explicit wiring, no discovery).

A small prefix dispatcher sits in front so the registry hot path (/v2/) pays for no framework
routing: /v2/ and /auth/token go to the registry layer, /containerregistries/ to the management
API, /console/ to the web console, the rest to a small Starlette app (health, readiness, metrics).
The dispatcher also measures every request (metrics, and one access-log line when
``CARGOBAY_ACCESS_LOG`` is on).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from prometheus_client.core import GaugeMetricFamily
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from cargobay import allocator, gc_metrics, observability, outages
from cargobay.config import Settings
from cargobay.domain.allowlist import client_address, is_allowed
from cargobay.logs import configure_logging, get_logger
from cargobay.runtime import Runtime, build_runtime

log = get_logger("cargobay.app")
access = get_logger("cargobay.access")


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
        if scope["type"] != "http":
            await self._route(scope["path"])(scope, receive, send)
            return
        await self._measured(scope, receive, send)

    def _route(self, path: str) -> ASGIApp:
        for prefix, app in self._routes:
            if path.startswith(prefix):
                return app
        return self._fallback

    async def _measured(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one request, counting its bytes and status for the metrics and the access log."""
        request = observability.begin_request()
        request.route = scope["path"] if scope["path"] in _OWN_PATHS else "other"
        peer = scope["client"][0] if scope.get("client") else None
        if self.settings.trusted_proxies and is_allowed(self.settings.trusted_proxies, peer):
            # Behind a TLS-terminating proxy we trust: links and the token realm say https.
            proto = next((v for k, v in scope["headers"] if k == b"x-forwarded-proto"), None)
            if proto in (b"https", b"http"):
                scope["scheme"] = proto.decode()
        measured = observability.Measured(scope["method"], scope["path"], peer)

        async def counted_receive() -> Any:
            message = await receive()
            body = message.get("body")
            if body:
                measured.received += len(body)
            return message

        async def counted_send(message: Any) -> None:
            if message["type"] == "http.response.start":
                measured.status = message["status"]
            else:
                body = message.get("body")
                if body:
                    measured.sent += len(body)
            await send(message)

        try:
            await self._route(scope["path"])(scope, counted_receive, counted_send)
        finally:
            seconds = measured.finish(request)
            if self.settings.access_log:
                self._log(scope, measured, request, seconds)

    def _log(
        self,
        scope: Scope,
        measured: observability.Measured,
        request: observability.RequestFacts,
        seconds: float,
    ) -> None:
        forwarded = None
        if self.settings.trusted_proxies:
            forwarded = next(
                (v.decode("latin-1") for k, v in scope["headers"] if k == b"x-forwarded-for"), None
            )
        kind, _, name = (request.principal or "").partition(":")
        access.info(
            "request",
            method=measured.method,
            path=measured.path,
            route=request.route,
            status=measured.status,
            bytes_in=measured.received,
            bytes_out=measured.sent,
            ms=round(seconds * 1000, 2),
            registry=request.registry,
            principal=kind or None,
            name=name or None,
            client=client_address(measured.client, forwarded, self.settings.trusted_proxies),
        )

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
        runtime.guard.start()
        from cargobay.console.app import build_console
        from cargobay.management.app import ManagementApp
        from cargobay.registry.app import build_registry_app

        registry = build_registry_app(runtime)
        management = ManagementApp(runtime)
        self._routes = [
            ("/v2", registry),
            ("/auth/token", registry),
            ("/containerregistries", management.api),
            ("/auth/v1", management.auth),
            ("/console", build_console(runtime)),
        ]
        self._fallback = _misc_app(runtime)
        from cargobay.worker import in_process_jobs

        async with registry.running(), in_process_jobs(runtime), observability.request_metrics_flushed():
            yield
        await runtime.close()


_OWN_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


async def _not_ready(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http":
        await PlainTextResponse("starting", status_code=503)(scope, receive, send)


def _misc_app(runtime: Runtime) -> Starlette:
    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def metrics(request: Request) -> Response:
        body, media_type = observability.exposition([observability.QueryCollector(lambda: _gauges(runtime))])
        return Response(body, media_type=media_type)

    async def readyz(request: Request) -> Response:
        from sqlalchemy import text

        headers = {"Retry-After": str(runtime.settings.retry_after_seconds)}
        if runtime.guard.full:
            body = {"status": "unavailable", "reason": "storage full: writes are refused, deletes work"}
            return JSONResponse(body, status_code=503, headers=headers)
        try:
            await runtime.db.read(lambda s: s.execute(text("SELECT 1")).scalar())
        except Exception as exc:
            fault = outages.classify(exc)
            reason = fault.value if fault is not None else type(exc).__name__
            return JSONResponse({"status": "unavailable", "reason": reason}, status_code=503, headers=headers)
        return JSONResponse({"status": "ok"})

    async def not_found(request: Request, exc: Any) -> Response:
        observability.facts().route = "other"
        return JSONResponse({"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]}, 404)

    return Starlette(
        routes=[Route("/healthz", healthz), Route("/readyz", readyz), Route("/metrics", metrics)],
        exception_handlers={404: not_found},
    )


def _gauges(runtime: Runtime) -> list[GaugeMetricFamily]:
    """Read at scrape time: the job queue by kind and state, open upload sessions, garbage collection."""
    from cargobay.db.queries import jobs, uploads

    queued = runtime.db.read_sync(jobs.depth)
    sessions = runtime.db.read_sync(uploads.count)
    return [
        observability.gauge(
            "cargobay_jobs", "Jobs queued or running, by kind and state", ["kind", "state"], queued
        ),
        observability.gauge("cargobay_upload_sessions", "Upload sessions open", [], [(sessions,)]),
        *runtime.db.read_sync(gc_metrics.gc_gauges),
    ]


def create_app(settings: Settings | None = None) -> CargobayApp:
    """uvicorn factory: ``uvicorn --factory cargobay.app:create_app``."""
    allocator.tune()  # every serving process, before it allocates much
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_format)
    return CargobayApp(settings)
