"""A registry's garbage collection runs: the newest first with paging to older ones, a run's own page,
and "Run now" (with a dry-run choice) for managers. They call the garbage collector as the management
API's ``garbageCollection/runs`` operations do, so the rules and permissions are the same: every member
of the contract sees the runs, owners, admins and users with manageRegistry start one."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from cargobay.console.context import Console, console_of, console_url, redirect
from cargobay.console.forms import Form, FormErrors, field_errors, status_of
from cargobay.console.paging import PER_PAGE, per_page
from cargobay.console.sessions import Session
from cargobay.domain.errors import DomainError, InvalidInput
from cargobay.services.gc import parse_run_id
from cargobay.services.registry_admin import RegistryView

TRIGGER_LABELS = {"schedule": "Schedule", "api": "On request", "cli": "Command line"}
PHASE_LABELS = {
    "starting": "Starting",
    "uploads": "Expiring idle uploads",
    "manifests": "Untagged manifests",
    "blobs": "Unreferenced blobs",
    "objects": "Deleting stored objects",
    "sweep": "Sweeping the store",
}
LABELS = {"triggers": TRIGGER_LABELS, "phases": PHASE_LABELS}


def dry_run_input(form: Form) -> bool:
    """The "Dry run" checkbox: ticked (``on``) or not sent; any other value is bad input."""
    value = form.get("dry_run")
    if value is not None and value != "on":
        raise InvalidInput(f"the dry-run box is ticked or not, it cannot be {value[:20]!r}", field="dry_run")
    return value == "on"


async def _registry(console: Console, session: Session, request: Request) -> RegistryView:
    return await console.services.registries.get(session.principal, request.path_params["rid"])


async def runs_list(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    view = await _registry(console, session, request)
    return await _runs_page(request, console, session, view, {"dry_run": False}, FormErrors())


async def _runs_page(
    request: Request,
    console: Console,
    session: Session,
    view: RegistryView,
    values: dict[str, Any],
    errors: FormErrors,
    status: int = 200,
) -> Response:
    """The runs, ``limit`` of them older than run ``before`` (the newest without it), and the form."""
    params = request.query_params
    limit = per_page(params.get("limit"))
    before = parse_run_id(params["before"], "before") if params.get("before") else None
    gc = console.services.gc
    runs = await gc.list_runs(session.principal, view.id, limit, before)
    older = bool(runs) and bool(await gc.list_runs(session.principal, view.id, 1, runs[-1].id))
    context = {
        "registry": view,
        "hostname": console.hostname(request, view),
        "tab": "gc",
        "runs": runs,
        "limit": limit,
        "per_page_choices": PER_PAGE,
        "before": before,
        "next_before": runs[-1].id if older else None,
        "values": values,
        "errors": errors,
        **LABELS,
    }
    return await console.render(request, session, "gc_runs.html", context, status)


async def run_now(request: Request) -> Response:
    """Queue a run (a run of the same kind already queued is shown instead, as the API answers it)."""
    console = console_of(request)
    session = await console.session(request)
    form = await console.form(request, session)
    view = await _registry(console, session, request)
    try:
        run = await console.services.gc.request_run(session.principal, view.id, dry_run_input(form))
    except DomainError as exc:
        values = {"dry_run": form.get("dry_run") == "on"}
        return await _runs_page(request, console, session, view, values, field_errors(exc), status_of(exc))
    return redirect(console_url("registries", view.id, "garbage-collection", str(run.id), done="queued"))


async def run_page(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    view = await _registry(console, session, request)
    run_id = parse_run_id(request.path_params["run"], "run")
    run = await console.services.gc.get_run(session.principal, view.id, run_id)
    context = {
        "registry": view,
        "hostname": console.hostname(request, view),
        "tab": "gc",
        "run": run,
        "done": request.query_params.get("done"),
        **LABELS,
    }
    return await console.render(request, session, "gc_run.html", context)
