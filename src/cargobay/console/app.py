"""The web console application (``/console/``): explicit routes, templates, static files, and the one
place where errors become pages.

Repository names are paths (``team/app``); a repository's own pages come after ``/-/``, which no
repository name can contain as a component, so ``/repositories/team/app/-/artifacts/sha256:…`` is
never ambiguous.
"""

from __future__ import annotations

import sqlite3
import traceback
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from jinja2 import Environment, PackageLoader, select_autoescape
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from cargobay import observability, outages
from cargobay.console.context import SECURITY_HEADERS, Console, console_of, console_url, redirect
from cargobay.console.forms import FormTooLarge, NotAForm, status_of
from cargobay.console.pages import (
    garbage_collection,
    registries,
    repositories,
    signin,
    tokens,
    vulnerabilities,
)
from cargobay.console.sessions import BadFormToken, Sessions, SignInRequired
from cargobay.domain.errors import DomainError
from cargobay.logs import get_logger
from cargobay.runtime import Runtime

log = get_logger("cargobay.console")

STATIC = Path(__file__).parent / "static"


def _routes() -> list[BaseRoute]:
    registry = "/registries/{rid}"
    repository = registry + "/repositories/{name:path}"
    gc = registry + "/garbage-collection"
    return [
        Route("/", signin.sign_in_page, methods=["GET"]),
        Route("/sign-in", signin.sign_in, methods=["POST"]),
        Route("/sign-out", signin.sign_out, methods=["POST"]),
        Route("/contract", signin.switch_contract, methods=["POST"]),
        Route("/registries", registries.registries_list, methods=["GET"]),
        Route("/registries", registries.create_registry, methods=["POST"]),
        Route("/registries/new", registries.new_registry_page, methods=["GET"]),
        Route("/registries/name-check", registries.name_check, methods=["GET"]),
        Route(registry, repositories.repositories_list, methods=["GET"]),
        Route(registry + "/settings", registries.registry_settings, methods=["GET"]),
        Route(registry + "/schedule", registries.change_schedule, methods=["POST"]),
        Route(registry + "/allowlist", registries.change_allowlist, methods=["POST"]),
        Route(registry + "/scanning", registries.enable_scanning, methods=["POST"]),
        Route(registry + "/delete", registries.delete_registry, methods=["POST"]),
        Route(registry + "/tokens", tokens.tokens_list, methods=["GET"]),
        Route(registry + "/tokens", tokens.create_token, methods=["POST"]),
        Route(registry + "/tokens/new", tokens.new_token_page, methods=["GET"]),
        Route(registry + "/tokens/{tid}", tokens.token_page, methods=["GET"]),
        Route(registry + "/tokens/{tid}", tokens.save_token, methods=["POST"]),
        Route(registry + "/tokens/{tid}/delete", tokens.delete_token, methods=["POST"]),
        Route(registry + "/vulnerabilities", vulnerabilities.vulnerability_search, methods=["GET"]),
        Route(registry + "/vulnerabilities/{vid}", vulnerabilities.vulnerability_search, methods=["GET"]),
        Route(gc, garbage_collection.runs_list, methods=["GET"]),
        Route(gc, garbage_collection.run_now, methods=["POST"]),
        Route(gc + "/{run}", garbage_collection.run_page, methods=["GET"]),
        Route(repository + "/-/artifacts/{digest}", vulnerabilities.artifact_page, methods=["GET"]),
        Route(repository + "/-/delete", repositories.delete_repository, methods=["POST"]),
        Route(repository, repositories.repository_page, methods=["GET"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]


def _when(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _size(value: int) -> str:
    amount = float(value)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if amount < 1024 or unit == "TiB":
            return f"{int(amount)} {unit}" if unit == "bytes" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{value} bytes"  # pragma: no cover


def _duration(seconds: float | None) -> str:
    """``42 s``, ``3 min 5 s``, ``24 h``: a time left, a grace period, how long a run took."""
    if seconds is None:
        return "—"
    total = max(0, round(seconds))
    if total < 60:
        return f"{total} s"
    minutes, rest = divmod(total, 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def templates() -> Jinja2Templates:
    env = Environment(
        loader=PackageLoader("cargobay.console", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["size"] = _size
    env.filters["duration"] = _duration
    env.filters["short"] = lambda digest: digest.split(":", 1)[-1][:12]
    env.filters["capitalize_first"] = lambda text: text[:1].upper() + text[1:]
    env.globals["url"] = console_url
    return Jinja2Templates(env=env)


async def _error_page(request: Request, status: int, message: str) -> Response:
    console = console_of(request)
    try:
        session = await console.session(request)
    except Exception:
        session = None
    context = {"status": status, "message": message}
    return await console.render(request, session, "error.html", context, status)


async def _on_sign_in_required(request: Request, exc: Exception) -> Response:
    if request.url.path.endswith("/name-check"):
        return Response("sign in again", status_code=401, headers=SECURITY_HEADERS)
    after = request.url.path if request.method == "GET" else ""
    if after and request.url.query:
        after += "?" + request.url.query
    return redirect(console_url(next=after or None))


async def _on_bad_form_token(request: Request, exc: Exception) -> Response:
    message = (
        "This form was out of date or came from another site, so nothing was changed. "
        "Go back, reload the page and try again."
    )
    return await _error_page(request, 403, message)


async def _on_form_too_large(request: Request, exc: Exception) -> Response:
    return await _error_page(request, 413, "The form was larger than this console accepts.")


async def _on_not_a_form(request: Request, exc: Exception) -> Response:
    return await _error_page(request, 400, "The console takes forms sent by its own pages only.")


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    return await _error_page(request, status_of(exc), _sentence(exc.message))


async def _on_http(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return await _error_page(request, 404, "There is no such page in the console.")
    if exc.status_code == 405:
        return await _error_page(request, 405, f"{request.method} is not possible on this page.")
    return await _error_page(request, exc.status_code, str(exc.detail))


async def _on_crash(request: Request, exc: Exception) -> Response:
    """A full disk or a database outage is said plainly (one log line); anything else is a 500."""
    console = console_of(request)
    fault = outages.answer(exc, console.guard, log, method=request.method, path=request.url.path)
    if fault is not None:
        response = await _error_page(request, status_of(fault), _sentence(fault.message))
        response.headers["Retry-After"] = str(console.settings.retry_after_seconds)
        return response
    trace = "".join(traceback.format_exception(exc, limit=-8))
    log.error("console_request_failed", path=request.url.path, error=type(exc).__name__, trace=trace)
    return await _error_page(request, 500, "Something went wrong on the server; the error was logged.")


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")


class MeasuredConsole:
    """Names the console's routes in the metrics (``/console/registries/{rid}``…)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            if scope["type"] == "http":
                route = scope.get("route")
                path = getattr(route, "path", None)
                observability.facts().route = "/console" + path if isinstance(path, str) else "/console"


def build_console(runtime: Runtime) -> ASGIApp:
    sessions = Sessions(runtime.auth.management, runtime.services.api_tokens, runtime.auth.console_key)
    console = Console(runtime.settings, runtime.services, sessions, templates(), runtime.guard)
    app = Starlette(
        routes=[Mount("/console", routes=_routes())],
        exception_handlers={
            SignInRequired: _on_sign_in_required,
            BadFormToken: _on_bad_form_token,
            FormTooLarge: _on_form_too_large,
            NotAForm: _on_not_a_form,
            DomainError: _on_domain_error,
            HTTPException: _on_http,
            **dict.fromkeys((OSError, sqlite3.Error, psycopg.Error, SQLAlchemyError), _on_crash),
            Exception: _on_crash,
        },
    )
    app.state.console = console
    return MeasuredConsole(app)
