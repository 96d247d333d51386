"""Signing in and out, and switching contracts (``/console/``, ``/console/sign-in``…)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cargobay.console.context import Console, console_of, console_url, redirect
from cargobay.console.forms import FormErrors, read_form, text
from cargobay.console.sessions import (
    BadFormToken,
    SignInRequired,
    end_session_cookie,
    set_session_cookie,
    set_sign_in_cookie,
)
from cargobay.domain.errors import Unauthenticated


def after_sign_in(value: str | None) -> str:
    """Where to go after signing in: a console page of this server only (never another site)."""
    if value and value.startswith("/console/") and not value.startswith("//") and "\\" not in value:
        return value
    return console_url("registries")


async def sign_in_page(request: Request) -> Response:
    console = console_of(request)
    try:
        await console.session(request)
    except SignInRequired:
        return await _form(request, console, {"next": request.query_params.get("next", "")})
    return redirect(console_url("registries"))


async def _form(request: Request, console: Console, context: dict[str, Any], status: int = 200) -> Response:
    token, fresh = console.sessions.sign_in_token(request)
    page = {"csrf": token, "errors": FormErrors(), "email": "", **context}
    response = await console.render(request, None, "signin.html", page, status)
    if fresh is not None:
        set_sign_in_cookie(request, response, fresh)
    return response


async def sign_in(request: Request) -> Response:
    console = console_of(request)
    form = await read_form(request)
    email, password, after = text(form, "email"), form.get("password", ""), form.get("next", "")
    context: dict[str, Any] = {"email": email, "next": after}
    try:
        console.sessions.check_sign_in_form(request, form.get("csrf"))
    except BadFormToken:
        errors = FormErrors(form="This sign-in form had expired. Please sign in again.")
        return await _form(request, console, {**context, "errors": errors}, 403)
    errors = FormErrors()
    if not email:
        errors.fields["email"] = "Enter the e-mail address you sign in with."
    if not password:
        errors.fields["password"] = "Enter your password."
    if errors:
        return await _form(request, console, {**context, "errors": errors}, 400)
    try:
        _, cookie = await console.sessions.sign_in(email, password)
    except Unauthenticated:
        errors.form = "The e-mail address or the password is not right."
        return await _form(request, console, {**context, "errors": errors}, 401)
    response = redirect(after_sign_in(after))
    set_session_cookie(request, response, cookie)
    return response


async def sign_out(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    await console.form(request, session, frees_space=True)
    await console.sessions.sign_out(session)
    response = redirect(console_url(signed_out=1))
    end_session_cookie(response)
    return response


async def switch_contract(request: Request) -> Response:
    """Act in another of the user's contracts (the same check as ``X-Contract-Number``)."""
    console = console_of(request)
    session = await console.session(request)
    form = await console.form(request, session)
    cookie = await console.sessions.switch(request, text(form, "contract"))
    response = redirect(console_url("registries"))
    set_session_cookie(request, response, cookie)
    return response
