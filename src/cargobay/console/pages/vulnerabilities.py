"""Scanning's pages: one artifact with its scan and its vulnerabilities (severity and fixable filters),
and the Vulnerability Search (one advisory by CVE id or alias, with the registry's artifacts it affects).
They call the artifact and vulnerability services, as the management API does."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from cargobay.console.context import console_of
from cargobay.console.forms import FormErrors
from cargobay.console.paging import PER_PAGE, Pager, offset, per_page
from cargobay.domain.errors import InvalidInput, NotFound
from cargobay.domain.listing import parse_bool, parse_severities
from cargobay.scanning.severity import LEVELS
from cargobay.services.artifacts import (
    ArtifactQuery,
    check_digest,
    check_vulnerability_id,
)
from cargobay.services.repository_admin import check_repository_name
from cargobay.services.vulnerabilities import FindingQuery, VulnerabilityView

SEVERITY_CHOICES = tuple(reversed(LEVELS))  # critical first, unknown last
# (orderBy key, descending) of each "Sort by" choice, as the management API names them.
FINDING_ORDERS = {
    "-score": ("score", True),
    "-severity": ("severity", True),
    "-publishedAt": ("publishedAt", True),
    "-updatedAt": ("updatedAt", True),
    "-fixable": ("fixable", True),
}
FINDING_ORDER_LABELS = {
    "-score": "Highest score",
    "-severity": "Highest severity",
    "-publishedAt": "Newest published",
    "-updatedAt": "Latest updated",
    "-fixable": "Fixable first",
}


@dataclass(frozen=True, slots=True)
class FindingFilters:
    """The artifact page's filters as asked (each checked by the rule the API uses)."""

    severities: tuple[str, ...]
    fixable: str  # "", "true" or "false"
    order: str

    @classmethod
    def of(cls, params: QueryParams) -> FindingFilters:
        asked = ",".join(v for v in params.getlist("severity") if v)
        chosen = parse_severities(asked, "severity")
        fixable = params.get("fixable", "")
        parse_bool(fixable, "fixable")
        order = params.get("order") or "-score"
        if order not in FINDING_ORDERS:
            raise InvalidInput(f"must be one of {', '.join(FINDING_ORDER_LABELS.values())}", field="sort by")
        return cls(tuple(s for s in SEVERITY_CHOICES if chosen and s in chosen), fixable, order)

    def query(self, start: int, limit: int) -> FindingQuery:
        key, descending = FINDING_ORDERS[self.order]
        return FindingQuery(
            start,
            limit,
            key,
            descending,
            frozenset(self.severities) or None,
            parse_bool(self.fixable, "fixable"),
        )

    @property
    def active(self) -> bool:
        return bool(self.severities or self.fixable)

    def link(self) -> dict[str, str]:
        """The filters as query parameters of the pager's links."""
        return {"severity": ",".join(self.severities), "fixable": self.fixable, "order": self.order}


async def artifact_page(request: Request) -> Response:
    console = console_of(request)
    session = await console.session(request)
    view = await console.services.registries.get(session.principal, request.path_params["rid"])
    name = check_repository_name(request.path_params["name"], "repository")
    digest = check_digest(request.path_params["digest"])
    params = request.query_params
    limit, start = per_page(params.get("limit")), offset(params.get("offset"))
    filters = FindingFilters.of(params)
    artifacts = console.services.artifacts
    artifact = await artifacts.get(session.principal, view.id, name, digest)
    report = await artifacts.scan_report(session.principal, view.id, name, digest)
    query = filters.query(start, limit)
    page = await artifacts.vulnerabilities(session.principal, view.id, name, digest, query)
    context = {
        "registry": view,
        "hostname": console.hostname(request, view),
        "tab": "repositories",
        "artifact": artifact,
        "scan": report,
        "vulnerabilities": page.items,
        "pager": Pager(start, limit, len(page.items), page.more),
        "per_page_choices": PER_PAGE,
        "filters": filters,
        "severity_choices": SEVERITY_CHOICES,
        "orders": FINDING_ORDER_LABELS,
    }
    return await console.render(request, session, "artifact.html", context)


async def vulnerability_search(request: Request) -> Response:
    """``/vulnerabilities`` (the search form), ``?id=…`` (a search) and ``/vulnerabilities/{vid}``: the
    advisory and this registry's artifacts with a finding of that id or alias."""
    console = console_of(request)
    session = await console.session(request)
    view = await console.services.registries.get(session.principal, request.path_params["rid"])
    asked = request.path_params.get("vid", request.query_params.get("id"))
    context: dict[str, object] = {
        "registry": view,
        "hostname": console.hostname(request, view),
        "tab": "vulnerabilities",
        "asked": (asked or "").strip(),
        "errors": FormErrors(),
        "advisory": None,
        "affected": [],
        "pager": None,
    }
    if asked is None:
        return await console.render(request, session, "vulnerabilities.html", context)
    try:
        ident = check_vulnerability_id(asked.strip(), "id")
    except InvalidInput as error:
        context["errors"] = FormErrors({"id": error.reason})
        return await console.render(request, session, "vulnerabilities.html", context, 400)
    params = request.query_params
    limit, start = per_page(params.get("limit")), offset(params.get("offset"))
    advisory: VulnerabilityView | None
    try:
        advisory = await console.services.vulnerabilities.find(ident)
    except NotFound:
        advisory = None
    query = ArtifactQuery(start, limit, "lastPush", True, vulnerability_id=ident)
    page = await console.services.artifacts.in_registry(session.principal, view.id, query)
    context.update(
        advisory=advisory,
        affected=page.items,
        pager=Pager(start, limit, len(page.items), page.more),
        per_page_choices=PER_PAGE,
    )
    status = 200 if advisory is not None or page.items else 404
    return await console.render(request, session, "vulnerabilities.html", context, status)
