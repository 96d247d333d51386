"""What every console page is wired with, and how a page is answered (templates, redirects, errors)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.templating import Jinja2Templates

from cargobay import observability
from cargobay.config import Settings
from cargobay.console.forms import Form, read_form
from cargobay.console.sessions import Session, Sessions
from cargobay.domain.errors import StorageFull
from cargobay.outages import DiskGuard
from cargobay.runtime import Services
from cargobay.services.registries import hostname, login_host, public_origin
from cargobay.services.registry_admin import RegistryView

# Pages hold secrets (a token's password is shown once) and per-user data: never cached, never framed.
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def console_url(*segments: str, **query: str | int | None) -> str:
    """``/console/a/b?x=1``: segments percent-encoded (``/`` kept: repository names are paths)."""
    path = "/".join(quote(s, safe="/") for s in segments)
    url = f"/console/{path}" if path else "/console/"
    pairs = [(k, str(v)) for k, v in query.items() if v is not None and v != ""]
    if pairs:
        url += "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in pairs)
    return url


@dataclass(frozen=True)
class Console:
    settings: Settings
    services: Services
    sessions: Sessions
    templates: Jinja2Templates
    guard: DiskGuard

    @property
    def env(self) -> Environment:
        return self.templates.env

    def origin(self, request: Request) -> str:
        """``scheme://host[:port]`` as clients reach the server."""
        return public_origin(
            self.settings.public_url, request.url.scheme, request.headers.get("host"), self.settings.listen
        )

    def public_host(self, request: Request) -> str:
        """``host:port`` as clients reach the server (path-style registry hosts)."""
        return self.origin(request).split("://", 1)[-1]

    def hostname(self, request: Request, view: RegistryView) -> str:
        if view.state == "New":
            return ""
        return hostname(view.name, self.settings.registry_domain, self.public_host(request))

    def login_host(self, request: Request, view: RegistryView) -> str:
        return login_host(view.name, self.settings.registry_domain, self.public_host(request))

    async def session(self, request: Request) -> Session:
        session = await self.sessions.current(request)
        observability.facts().principal = f"user:{session.principal.email}"
        return session

    async def form(self, request: Request, session: Session, frees_space: bool = False) -> Form:
        """The posted form, once its token matched this session's (``BadFormToken`` otherwise).

        While the disk is full only forms that free space (deletes) are taken, as on the API.
        """
        form = await read_form(request)
        self.sessions.check_form(session, form.get("csrf"))
        if self.guard.full and not frees_space:
            raise StorageFull()
        return form

    async def render(
        self,
        request: Request,
        session: Session | None,
        template: str,
        context: dict[str, Any],
        status: int = 200,
    ) -> Response:
        page: dict[str, Any] = {"session": session, "url": console_url}
        if session is not None:
            page["contracts"] = await self.services.tenancy.contracts_of(session.principal.user_id)
            page["may_manage"] = session.principal.may_manage
            page["csrf"] = session.csrf
        page.update(context)
        return self.templates.TemplateResponse(
            request, template, page, status_code=status, headers=SECURITY_HEADERS
        )


def redirect(url: str) -> Response:
    return RedirectResponse(url, status_code=303, headers={"Cache-Control": "no-store"})


def console_of(request: Request) -> Console:
    console: Console = request.app.state.console
    return console
