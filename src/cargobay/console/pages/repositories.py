"""A registry's repositories (its main page), a repository's artifacts, and deleting a repository: the
repository and artifact services, as the management API lists them (one artifact: ``vulnerabilities``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from cargobay.console.context import console_of, console_url, redirect
from cargobay.console.paging import PER_PAGE, Pager, offset, per_page
from cargobay.domain.errors import InvalidInput
from cargobay.services.artifacts import ArtifactQuery
from cargobay.services.repository_admin import RepositoryQuery, check_repository_name

# (orderBy key, descending) of each choice of the "Sort by" menu, as the management API names them.
REPOSITORY_ORDERS = {
    "-lastPush": ("lastPush", True),
    "name": ("name", False),
    "-lastPull": ("lastPull", True),
    "-pullCount": ("pullCount", True),
    "-artifactCount": ("artifactCount", True),
}
ORDER_LABELS = {
    "-lastPush": "Last push",
    "name": "Name",
    "-lastPull": "Last pull",
    "-pullCount": "Most pulled",
    "-artifactCount": "Most artifacts",
}


async def repositories_list(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    view = await console.services.registries.get(session.principal, request.path_params["rid"])
    params = request.query_params
    limit, start = per_page(params.get("limit")), offset(params.get("offset"))
    order = params.get("order") or "-lastPush"
    if order not in REPOSITORY_ORDERS:
        raise InvalidInput(f"must be one of {', '.join(ORDER_LABELS.values())}", field="sort by")
    key, descending = REPOSITORY_ORDERS[order]
    name_filter = params.get("q", "").strip()
    query = RepositoryQuery(start, limit, key, descending, name_filter=name_filter or None)
    page = await console.services.repositories.list(session.principal, view.id, query)
    context = {
        "registry": view,
        "hostname": console.hostname(request, view),
        "tab": "repositories",
        "repositories": page.items,
        "pager": Pager(start, limit, len(page.items), page.more),
        "per_page_choices": PER_PAGE,
        "order": order,
        "orders": ORDER_LABELS,
        "q": name_filter,
        "done": params.get("done"),
    }
    return await console.render(request, session, "repositories.html", context)


async def repository_page(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    view = await console.services.registries.get(session.principal, request.path_params["rid"])
    name = check_repository_name(request.path_params["name"], "repository")
    repository = await console.services.repositories.get(session.principal, view.id, name)
    params = request.query_params
    limit, start = per_page(params.get("limit")), offset(params.get("offset"))
    query = ArtifactQuery(start, limit, "lastPush", True)
    page = await console.services.artifacts.in_repository(session.principal, view.id, name, query)
    context = {
        "registry": view,
        "hostname": console.hostname(request, view),
        "tab": "repositories",
        "repository": repository,
        "artifacts": page.items,
        "pager": Pager(start, limit, len(page.items), page.more),
        "per_page_choices": PER_PAGE,
    }
    return await console.render(request, session, "repository.html", context)


async def delete_repository(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    await console.form(request, session, frees_space=True)
    rid = request.path_params["rid"]
    name = check_repository_name(request.path_params["name"], "repository")
    await console.services.repositories.delete(session.principal, rid, name)
    return redirect(console_url("registries", rid, done="repository-deleted"))
