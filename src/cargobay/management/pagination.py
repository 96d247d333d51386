"""The links of every list page (``self``, previous, next), for the IONOS API's three paging styles.

* cursor (registries): ``limit`` then the filters, ``pagination.token`` for the next page, no previous;
* offset as strings (tokens) and offset as integers (repositories, artifacts, vulnerabilities): the
  filters, then ``offset`` and ``limit``. ``next`` also carries ``pagination.token``, a cursor that
  lets the server seek to the page instead of counting ``offset`` rows; the offset stays the truth.

The registries and tokens lists render a missing link as ``""`` (``PaginationLinks``), the others
leave it out (``Links``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from cargobay.domain.listing import Page, Position, decode_position, encode_position, list_fingerprint
from cargobay.management.context import Management
from cargobay.management.schemas.common import Links, PaginationLinks

TOKEN = "pagination.token"


@dataclass(frozen=True, slots=True)
class PageLinks:
    self_href: str
    previous: str | None
    next: str | None

    def links(self) -> Links:
        """Repositories, artifacts and vulnerabilities: ``prev``/``next`` only where such a page exists."""
        return Links.model_validate({"self": self.self_href, "prev": self.previous, "next": self.next})

    def pagination_links(self) -> PaginationLinks:
        """Registries and tokens: every link present, ``""`` where there is no such page."""
        return PaginationLinks.model_validate(
            {"self": self.self_href, "previous": self.previous or "", "next": self.next or ""}
        )


@dataclass(frozen=True, slots=True)
class Cursor:
    """The keyset ``pagination.token`` of an offset list, bound to the list, its order and filters,
    and the offset of the page it starts; one that does not match is not used (the offset places the page).
    """

    fingerprint: str
    offset: int
    limit: int
    token: str | None

    @classmethod
    def of(
        cls,
        segments: tuple[str, ...],
        filters: Mapping[str, str | int | None],
        offset: int,
        limit: int,
        token: str | None,
    ) -> Cursor:
        parts = [*segments, *(f"{k}={v}" for k, v in filters.items() if v is not None and v != "")]
        return cls(list_fingerprint(*parts), offset, limit, token)

    def position(self) -> Position | None:
        """Where to seek to, when the client sent a token made for this page."""
        return decode_position(self.token, self.fingerprint, self.offset)

    def next_token(self, page: Page[Any]) -> str | None:
        if page.next is None:
            return None
        return encode_position(page.next, self.fingerprint, self.offset + self.limit)


def page_links(
    m: Management,
    request: Request,
    segments: tuple[str, ...],
    *,
    limit: int,
    offset: int | None,
    more: bool,
    filters: Mapping[str, str | int | None] | None = None,
    token: str | None = None,
    next_token: str | None = None,
) -> PageLinks:
    """Links of one page. ``offset`` None is the cursor style; ``more`` says whether a next page
    exists; ``token`` is the cursor this page was asked with, ``next_token`` the one of the next page."""
    base = {k: v for k, v in (filters or {}).items() if v is not None and v != ""}

    def href(at: int | None, cursor: str | None) -> str:
        query: dict[str, str | int] = {"limit": limit, **base} if at is None else {**base, "offset": at}
        if at is not None:
            query["limit"] = limit
        if cursor:
            query[TOKEN] = cursor
        return m.href(request, *segments, query=query)

    if offset is None:
        return PageLinks(href(None, token), None, href(None, next_token) if more and next_token else None)
    return PageLinks(
        href(offset, token),
        href(max(0, offset - limit), None) if offset > 0 else None,
        href(offset + limit, next_token) if more else None,
    )
