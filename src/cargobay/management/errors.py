"""Every management-API error, whatever raised it, as the IONOS body
``{"httpStatus": n, "messages": [{"errorCode": "<string>", "message": "..."}]}``.

``status_of`` is the one place where domain errors get their HTTP status here.
"""

from __future__ import annotations

import json
import sqlite3
import traceback
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from cargobay import outages
from cargobay.domain.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    StorageFull,
    Unauthenticated,
    Unavailable,
)
from cargobay.logs import get_logger
from cargobay.outages import DiskGuard

log = get_logger("cargobay.management")

_PHRASES = {404: "no such endpoint", 405: "method not allowed here", 401: "authentication required"}


def error_response(
    status: int,
    messages: Sequence[tuple[str, str]],
    head: bool = False,
    headers: Mapping[str, str] | None = None,
) -> Response:
    body = {
        "httpStatus": status,
        "messages": [{"errorCode": code, "message": text} for code, text in messages],
    }
    content = b"" if head else json.dumps(body).encode()
    response = Response(content, status_code=status, media_type="application/json", headers=headers)
    if head:
        response.headers["Content-Length"] = "0"
    return response


# Checked in order; anything else a domain rule refuses is bad input (400).
_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Unavailable, 503),
    (StorageFull, 507),
)


def status_of(exc: DomainError) -> int:
    return next((status for kind, status in _STATUS if isinstance(exc, kind)), 400)


def domain_error_response(exc: DomainError, head: bool = False, retry_after: int = 5) -> Response:
    status = status_of(exc)
    headers: dict[str, str] = {}
    if status == 401:
        headers["WWW-Authenticate"] = 'Basic realm="containerregistries"'
    elif status in (503, 507):
        headers["Retry-After"] = str(retry_after)
    return error_response(status, [(str(status), exc.message)], head, headers)


def field_of(loc: Sequence[Any]) -> str:
    """``("body", "properties", "scopes", 0, "name")`` -> ``properties.scopes[0].name``."""
    where = list(loc)
    source = where.pop(0) if where and where[0] in ("body", "query", "path", "header") else "body"
    text = ""
    for part in where:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += ("." if text else "") + str(part)
    if source == "query":
        return f"query parameter {text}"
    if source == "path":
        return f"path parameter {text}"
    if source == "header":
        return f"header {text}"
    return text or "request body"


def validation_messages(exc: RequestValidationError) -> list[tuple[str, str]]:
    messages: list[tuple[str, str]] = []
    for error in exc.errors()[:20]:
        kind = error.get("type", "")
        field = field_of(error.get("loc", ()))
        if kind == "json_invalid":
            text = "the request body is not valid JSON"
        elif kind == "missing" and field == "request body":
            text = "a JSON request body is required"
        elif kind == "missing":
            text = f"{field} is required"
        elif kind == "model_attributes_type" or kind == "dict_type":
            text = f"{field} must be a JSON object"
        else:
            text = f"{field}: {error.get('msg', 'invalid value')}"
        messages.append(("400", text))
    return messages or [("400", "invalid request")]


_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def allowed_methods(app: FastAPI, scope: Scope) -> list[str]:
    """Every method some route accepts on this path (FastAPI's own 405 names only the first route's)."""
    return [
        method
        for method in _METHODS
        if any(route.matches({**scope, "method": method})[0] is Match.FULL for route in app.router.routes)
    ]


def _retry_after(request: Request) -> int:
    return int(getattr(request.app.state, "retry_after", 5))


def install(app: FastAPI) -> None:
    async def on_domain_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, DomainError)
        return domain_error_response(exc, request.method == "HEAD", _retry_after(request))

    async def on_fault(request: Request, exc: Exception) -> Response:
        """Errors of the disk and the database: a full disk or an outage is answered (507, 503)
        with one log line; anything else is a 500 with its traceback logged once."""
        guard = getattr(request.app.state, "guard", None) or DiskGuard(None)
        fault = outages.answer(exc, guard, log, method=request.method, path=request.url.path)
        if fault is not None:
            return domain_error_response(fault, request.method == "HEAD", _retry_after(request))
        return await on_crash(request, exc)

    async def on_validation(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return error_response(400, validation_messages(exc), request.method == "HEAD")

    async def on_http(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        headers = dict(exc.headers or {})
        message = _PHRASES.get(
            exc.status_code, exc.detail if isinstance(exc.detail, str) else "request failed"
        )
        if exc.status_code == 405:
            allowed = allowed_methods(app, request.scope)
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not allowed here; use {', '.join(allowed)}"
        return error_response(
            exc.status_code, [(str(exc.status_code), message)], request.method == "HEAD", headers
        )

    async def on_crash(request: Request, exc: Exception) -> Response:
        # A plain-text traceback: rendering one with locals can stall the event loop for many seconds.
        trace = "".join(traceback.format_exception(exc, limit=-8))
        log.error("management_request_failed", path=request.url.path, error=type(exc).__name__, trace=trace)
        return error_response(500, [("500", "internal error")], request.method == "HEAD")

    app.add_exception_handler(DomainError, on_domain_error)
    for kind in (OSError, sqlite3.Error, psycopg.Error, SQLAlchemyError):
        app.add_exception_handler(kind, on_fault)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_crash)
