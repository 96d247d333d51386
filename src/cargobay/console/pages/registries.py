"""Registries: the list, adding one (with the live name check), properties, and deleting one.

Every rule is the service's: the console builds the same ``RegistrySpec`` / ``RegistryChanges`` the
management API builds, with the same parsers, and shows what they refuse next to the input.
"""

from __future__ import annotations

import re
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cargobay.console.context import Console, console_of, console_url, redirect
from cargobay.console.forms import Form, FormErrors, field_errors, status_of, text
from cargobay.console.paging import PER_PAGE, per_page
from cargobay.console.sessions import Session
from cargobay.domain.allowlist import MAX_ENTRIES, validate_allowlist
from cargobay.domain.errors import DomainError, InvalidInput
from cargobay.domain.schedule import DAYS
from cargobay.services.registry_admin import RegistryChanges, RegistryView, parse_spec, schedule_of

_TIME_WITHOUT_SECONDS = re.compile(r"^\d\d:\d\d$")


def schedule_input(form: Form) -> tuple[object, object] | None:
    """The picker's ``(days, time)``, or None when neither a day nor a time was chosen.

    The time picker sends ``HH:MM``: seconds are added; everything else goes to the rule as sent.
    """
    days, time = form.getlist("days"), text(form, "time")
    if not days and not time:
        return None
    return days, f"{time}:00" if _TIME_WITHOUT_SECONDS.match(time) else time


# -- the list --


async def registries_list(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    query = request.query_params
    limit = per_page(query.get("limit"))
    name_filter = query.get("q", "").strip()
    after = query.get("after") or None
    views, more = await console.services.registries.list(session.principal, name_filter or None, limit, after)
    rows = [_row(console, request, v) for v in views]
    return await console.render(
        request,
        session,
        "registries.html",
        {
            "rows": rows,
            "q": name_filter,
            "limit": limit,
            "per_page_choices": PER_PAGE,
            "after": after,
            "next_after": views[-1].name if more and views else None,
            "done": query.get("done"),
        },
    )


def _row(console: Console, request: Request, view: RegistryView) -> dict[str, Any]:
    return {"view": view, "hostname": console.hostname(request, view)}


# -- adding a registry --


def _new_values() -> dict[str, Any]:
    return {"name": "", "location": "", "scanning": True, "days": [], "time": ""}


async def new_registry_page(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    return await _new_form(request, console, session, _new_values(), FormErrors())


async def _new_form(
    request: Request,
    console: Console,
    session: Session,
    values: dict[str, Any],
    errors: FormErrors,
    status: int = 200,
) -> Response:
    context = {"values": values, "errors": errors, "locations": console.settings.locations, "days": DAYS}
    return await console.render(request, session, "registry_new.html", context, status)


async def create_registry(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    form = await console.form(request, session)
    scanning = form.get("scanning") == "on"
    values = {
        "name": text(form, "name"),
        "location": text(form, "location"),
        "scanning": scanning,
        "days": form.getlist("days"),
        "time": text(form, "time"),
    }
    try:
        spec = parse_spec(
            name=values["name"],
            location=values["location"],
            schedule=schedule_input(form),
            scanning=scanning,
            allowlist=[],
            locations=console.settings.locations,
        )
        view = await console.services.registries.create(session.principal, spec)
    except DomainError as exc:
        return await _new_form(request, console, session, values, field_errors(exc), status_of(exc))
    return redirect(console_url("registries", view.id, done="created"))


async def name_check(request: Request) -> Response:
    """The live name check of the add form: available, taken or invalid, in the rule's words."""
    console = console_of(request)
    await console.session(request)
    name = request.query_params.get("name", "")
    try:
        taken = await console.services.registries.name_in_use(name)
    except InvalidInput as exc:
        state, message = "invalid", exc.reason
    else:
        state = "taken" if taken else "available"
        message = (
            f"{name} is already in use; registry names are unique across all contracts."
            if taken
            else f"{name} is available."
        )
    return JSONResponse({"state": state, "message": message}, headers={"Cache-Control": "no-store"})


# -- properties --


async def registry_settings(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    view = await console.services.registries.get(session.principal, request.path_params["rid"])
    return await _settings(request, console, session, view, {}, FormErrors())


async def _settings(
    request: Request,
    console: Console,
    session: Session,
    view: RegistryView,
    values: dict[str, Any],
    errors: FormErrors,
    status: int = 200,
    failed: str | None = None,
) -> Response:
    """The properties page; ``failed`` names the form whose ``errors`` and ``values`` are shown."""
    schedule = view.schedule
    defaults = {
        "days": list(schedule.days) if schedule else [],
        "time": schedule.time if schedule else "",
        "allowlist": "\n".join(view.allowlist),
        "confirm_name": "",
    }
    context = {
        "registry": view,
        "hostname": console.hostname(request, view),
        "login_host": console.login_host(request, view),
        "tab": "settings",
        "days": DAYS,
        "values": {**defaults, **values},
        "errors": errors,
        "no_errors": FormErrors(),
        "failed": failed,
        "max_allowlist": MAX_ENTRIES,
        "done": request.query_params.get("done"),
    }
    return await console.render(request, session, "registry_settings.html", context, status)


async def _change(request: Request, which: str) -> Response:
    """One of the properties forms: build the changes, let the service apply them, or show why not."""
    console = console_of(request)
    session = await console.session(request)
    rid = request.path_params["rid"]
    form = await console.form(request, session)
    values: dict[str, Any] = {}
    try:
        if which == "schedule":
            values = {"days": form.getlist("days"), "time": text(form, "time")}
            removing = form.get("remove") is not None
            changes = RegistryChanges(schedule=None if removing else schedule_of(schedule_input(form)))
        elif which == "allowlist":
            values = {"allowlist": form.get("allowlist", "")}
            lines = [line.strip() for line in values["allowlist"].splitlines() if line.strip()]
            changes = RegistryChanges(allowlist=tuple(validate_allowlist(lines, "apiSubnetAllowList")))
        else:
            if form.get("understood") != "on":
                raise InvalidInput(
                    "tick the box to confirm: vulnerability scanning cannot be switched off again",
                    field="understood",
                )
            changes = RegistryChanges(vulnerability_scanning=True)
        await console.services.registries.patch(session.principal, rid, changes)
    except DomainError as exc:
        view = await console.services.registries.get(session.principal, rid)
        errors = field_errors(exc)
        return await _settings(request, console, session, view, values, errors, status_of(exc), which)
    return redirect(console_url("registries", rid, "settings", done=which))


async def change_schedule(request: Request) -> Response:
    return await _change(request, "schedule")


async def change_allowlist(request: Request) -> Response:
    return await _change(request, "allowlist")


async def enable_scanning(request: Request) -> Response:
    return await _change(request, "scanning")


async def delete_registry(request: Request) -> Response:
    """Delete once the registry's name was typed to confirm (nothing happens otherwise)."""
    console = console_of(request)
    session = await console.session(request)
    rid = request.path_params["rid"]
    form = await console.form(request, session, frees_space=True)
    view = await console.services.registries.get(session.principal, rid)
    typed = text(form, "confirm_name")
    try:
        if typed != view.name:
            raise InvalidInput(
                f"type the registry's name, {view.name}, to confirm"
                if typed
                else f"type {view.name} to confirm; the registry and everything in it will be deleted",
                field="confirm_name",
            )
        await console.services.registries.delete(session.principal, rid)
    except DomainError as exc:
        values = {"confirm_name": typed}
        return await _settings(
            request, console, session, view, values, field_errors(exc), status_of(exc), "delete"
        )
    return redirect(console_url("registries", done="deleted"))
