"""Paging of the console's lists: a per-page choice and an offset, checked like any other input."""

from __future__ import annotations

from dataclasses import dataclass

from cargobay.domain.errors import InvalidInput
from cargobay.domain.listing import MAX_OFFSET, parse_digits

PER_PAGE = (10, 25, 50, 100)
DEFAULT_PER_PAGE = 25


def per_page(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PER_PAGE
    if not raw.isdigit() or int(raw) not in PER_PAGE:
        raise InvalidInput(
            f"must be one of {', '.join(map(str, PER_PAGE))}, got {raw[:20]!r}", field="per page"
        )
    return int(raw)


def offset(raw: str | None) -> int:
    return parse_digits(raw, "offset", 0, 0, MAX_OFFSET)


@dataclass(frozen=True, slots=True)
class Pager:
    """Where a page of ``limit`` rows from ``offset`` stands: its first and last row (1-based), and
    the offsets of the pages before and after it (None at either end)."""

    offset: int
    limit: int
    shown: int
    more: bool

    @property
    def first(self) -> int:
        return self.offset + 1 if self.shown else 0

    @property
    def last(self) -> int:
        return self.offset + self.shown

    @property
    def previous(self) -> int | None:
        return max(0, self.offset - self.limit) if self.offset > 0 else None

    @property
    def next(self) -> int | None:
        return self.offset + self.limit if self.more else None
