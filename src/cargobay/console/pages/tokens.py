"""Registry tokens: the list, adding one (its password shown once, with login lines), editing status,
expiry and scopes, and deleting one. The rules are the token service's and the scope parser's."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cargobay.console.context import Console, console_of, console_url, redirect
from cargobay.console.forms import Form, FormErrors, field_errors, status_of, text
from cargobay.console.sessions import Session
from cargobay.domain.errors import DomainError, InvalidInput
from cargobay.domain.patching import UNSET
from cargobay.domain.scopes import ACTIONS, SCOPE_TYPES, TokenScope, parse_token_scopes
from cargobay.services.registry_admin import RegistryView
from cargobay.services.tokens import TokenChanges, TokenView, parse_expiry, parse_spec, parse_status

MAX_SCOPE_ROWS = 50
_EMPTY_ROW: dict[str, Any] = {"type": "repository", "name": "", "actions": []}


def _rows_of(scopes: tuple[TokenScope, ...]) -> list[dict[str, Any]]:
    return [{"type": s.type, "name": s.name, "actions": sorted(s.actions)} for s in scopes]


def _form_rows(form: Form) -> list[dict[str, Any]]:
    """The scope rows as the form sent them (at most ``MAX_SCOPE_ROWS``)."""
    count = min(int(form.get("rows", "1")) if form.get("rows", "1").isdigit() else 1, MAX_SCOPE_ROWS)
    return [
        {
            "type": text(form, f"scopes[{i}].type"),
            "name": text(form, f"scopes[{i}].name"),
            "actions": form.getlist(f"scopes[{i}].actions"),
        }
        for i in range(count)
    ]


def _scopes_to_check(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[int, int]]:
    """Rows left empty are not scopes; the others go to the rule, with where each came from."""
    kept = [(i, row) for i, row in enumerate(rows) if row["name"] or row["actions"]]
    return [row for _, row in kept], {n: i for n, (i, _) in enumerate(kept)}


def _expiry_input(form: Form) -> object:
    """The chosen expiry as the rule takes it: None for "No expiry", else the picker's value (UTC)."""
    if form.get("expiry_mode") == "never":
        return None
    value = text(form, "expiry")
    if not value:
        raise InvalidInput("choose a date and time (UTC), or No expiry", field="expiryDate")
    return value


def _values(form: Form) -> dict[str, Any]:
    return {
        "name": text(form, "name"),
        "enabled": form.get("enabled") == "on",
        "expiry_mode": "never" if form.get("expiry_mode") == "never" else "on",
        "expiry": text(form, "expiry"),
        "expiry_shown": form.get("expiry_shown", ""),
        "rows": _form_rows(form),
    }


def _edited_rows(form: Form, values: dict[str, Any]) -> bool:
    """``Add a scope`` / ``Remove`` buttons: change the rows and show the form again (nothing is stored)."""
    rows: list[dict[str, Any]] = values["rows"]
    if form.get("add_scope") is not None:
        if len(rows) < MAX_SCOPE_ROWS:
            rows.append(dict(_EMPTY_ROW))
        return True
    remove = form.get("remove_scope")
    if remove is not None:
        if remove.isdigit() and int(remove) < len(rows):
            rows.pop(int(remove))
        if not rows:
            rows.append(dict(_EMPTY_ROW))
        return True
    return False


async def _registry(console: Console, session: Session, request: Request) -> RegistryView:
    return await console.services.registries.get(session.principal, request.path_params["rid"])


# -- the list --


async def tokens_list(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    view = await _registry(console, session, request)
    tokens, total = await console.services.tokens.list(session.principal, view.id, 0, 1000)
    context = {
        "registry": view,
        "hostname": console.hostname(request, view),
        "tab": "tokens",
        "tokens": tokens,
        "total": total,
        "done": request.query_params.get("done"),
    }
    return await console.render(request, session, "tokens.html", context)


# -- adding a token --


async def _token_form(
    request: Request,
    console: Console,
    session: Session,
    view: RegistryView,
    values: dict[str, Any],
    errors: FormErrors,
    token: TokenView | None = None,
    status: int = 200,
) -> Response:
    context = {
        "registry": view,
        "hostname": console.hostname(request, view),
        "tab": "tokens",
        "values": values,
        "errors": errors,
        "token": token,
        "scope_types": SCOPE_TYPES,
        "actions": ACTIONS,
    }
    return await console.render(request, session, "token_form.html", context, status)


async def new_token_page(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    view = await _registry(console, session, request)
    values = {"name": "", "enabled": True, "expiry_mode": "never", "expiry": "", "rows": [dict(_EMPTY_ROW)]}
    return await _token_form(request, console, session, view, values, FormErrors())


async def create_token(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    form = await console.form(request, session)
    view = await _registry(console, session, request)
    values = _values(form)
    if _edited_rows(form, values):
        return await _token_form(request, console, session, view, values, FormErrors())
    scopes, from_rows = _scopes_to_check(values["rows"])
    try:
        spec = parse_spec(
            values["name"],
            _expiry_input(form),
            scopes,
            "enabled" if values["enabled"] else "disabled",
        )
        token = await console.services.tokens.create(session.principal, view.id, spec)
    except DomainError as exc:
        errors = field_errors(exc, from_rows)
        return await _token_form(request, console, session, view, values, errors, status=status_of(exc))
    return await _created(request, console, session, view, token)


async def _created(
    request: Request, console: Console, session: Session, view: RegistryView, token: TokenView
) -> Response:
    """The one page that shows the password, with ready login lines for this registry's host."""
    host = console.login_host(request, view)
    plain_http = console.origin(request).startswith("http://")
    tls = " --tls-verify=false" if plain_http else ""
    secret = f"echo '{token.password}'"
    context = {
        "registry": view,
        "hostname": console.hostname(request, view),
        "tab": "tokens",
        "token": token,
        "login_host": host,
        "plain_http": plain_http,
        "docker_login": f"{secret} | docker login {host} --username {token.name} --password-stdin",
        "podman_login": f"{secret} | podman login{tls} {host} --username {token.name} --password-stdin",
    }
    return await console.render(request, session, "token_created.html", context, 201)


# -- editing and deleting --


def _shown_expiry(token: TokenView) -> str:
    if token.expiry_date is None:
        return ""
    return token.expiry_date.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")


async def token_page(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    view = await _registry(console, session, request)
    token = await console.services.tokens.get(session.principal, view.id, request.path_params["tid"])
    values = {
        "name": token.name,
        "enabled": token.status == "enabled",
        "expiry_mode": "never" if token.expiry_date is None else "on",
        "expiry": _shown_expiry(token),
        "expiry_shown": _shown_expiry(token),
        "rows": _rows_of(token.scopes) or [dict(_EMPTY_ROW)],
    }
    return await _token_form(request, console, session, view, values, FormErrors(), token)


async def save_token(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    form = await console.form(request, session)
    view = await _registry(console, session, request)
    token = await console.services.tokens.get(session.principal, view.id, request.path_params["tid"])
    values = {**_values(form), "name": token.name}
    if _edited_rows(form, values):
        return await _token_form(request, console, session, view, values, FormErrors(), token)
    scopes, from_rows = _scopes_to_check(values["rows"])
    try:
        expiry = _expiry_input(form)
        # An expiry left as it was shown is no change (the picker drops the stored fractions).
        unchanged = expiry is not None and expiry == values["expiry_shown"] and token.expiry_date is not None
        changes = TokenChanges(
            expiry_date=UNSET if unchanged else parse_expiry(expiry),
            scopes=tuple(parse_token_scopes(scopes)),
            status=parse_status("enabled" if values["enabled"] else "disabled"),
        )
        await console.services.tokens.patch(session.principal, view.id, token.id, changes)
    except DomainError as exc:
        errors = field_errors(exc, from_rows)
        return await _token_form(request, console, session, view, values, errors, token, status_of(exc))
    return redirect(console_url("registries", view.id, "tokens", done="saved"))


async def delete_token(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    await console.form(request, session, frees_space=True)
    rid, tid = request.path_params["rid"], request.path_params["tid"]
    await console.services.tokens.delete(session.principal, rid, tid)
    return redirect(console_url("registries", rid, "tokens", done="deleted"))
