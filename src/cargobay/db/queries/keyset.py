"""One page of a list in an indexed order, found by a keyset seek or an offset, NULLs last on both databases.

A list orders by ``(key, tiebreak)`` where ``tiebreak`` is unique in the list's scope. Each order has
an index ``(scope, key, tiebreak)``; the page selects only those columns, so both the seek and the
offset walk read that index and nothing else (no sort, no table rows). The caller then loads the
page's rows by their tiebreaks.

NULLs sort last in either direction. SQLite puts NULL first in an ascending index and PostgreSQL last,
so no single index order matches ``NULLS LAST`` on both, for both directions. A nullable key is
therefore read as two ranges of the same index: ``key IS NOT NULL`` in the asked direction, then
``key IS NULL`` in ascending tiebreak order; each is an index range on both databases (the plans are
checked in ``tests/integration/db/test_list_plans.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, literal, select, tuple_
from sqlalchemy.orm import Session

from cargobay.domain.listing import Position


@dataclass(frozen=True, slots=True)
class Ordering:
    key: Any  # a column (or, for an order no index serves, any SQL expression)
    tiebreak: Any  # a column unique within the scope
    descending: bool
    nullable: bool


@dataclass(frozen=True, slots=True)
class Keys:
    """The (key, tiebreak) pairs of one page in order, and whether more rows follow."""

    rows: list[tuple[Any, Any]]
    more: bool

    @property
    def next(self) -> Position | None:
        """Where the next page starts; None on the last page."""
        return Position(*self.rows[-1]) if self.more and self.rows else None


def page(
    session: Session,
    scope: list[Any],
    order: Ordering,
    *,
    offset: int,
    limit: int,
    after: Position | None = None,
    source: Any = None,
) -> Keys:
    """The ``limit`` rows after ``after`` (a seek), or else after the first ``offset`` rows.

    ``scope`` is the WHERE clause of the list; ``source`` the FROM when the key is not a column of
    the tiebreak's table. One row more than asked is read to tell whether a next page exists.
    """
    want = limit + 1
    base = select(order.key, order.tiebreak)
    if source is not None:
        base = base.select_from(source)
    base = base.where(*scope)
    rows: list[tuple[Any, Any]] = []
    skip = 0 if after is not None else offset
    if not order.nullable or after is None or after.key is not None:
        ranged = base.where(order.key.is_not(None)) if order.nullable else base
        rows = _fetch(session, _ordered(_after(ranged, order, after), order), skip, want)
        if len(rows) == want or not order.nullable:
            return Keys(rows[:limit], len(rows) > limit)
        # the rest of the page comes from the NULL range; an offset past the non-NULL rows skips into it
        skip = max(0, offset - _count(session, ranged)) if after is None and not rows else 0
    nulls = base.where(order.key.is_(None))
    if after is not None and after.key is None:
        nulls = nulls.where(order.tiebreak > literal(after.tiebreak, order.tiebreak.type))
    # (key, tiebreak) rather than tiebreak alone: the same order (the keys are all NULL), and the
    # one PostgreSQL reads from the index, as it does not infer the order from ``key IS NULL``.
    rows += _fetch(session, nulls.order_by(order.key.asc(), order.tiebreak.asc()), skip, want - len(rows))
    return Keys(rows[:limit], len(rows) > limit)


def _after(query: Select[Any], order: Ordering, after: Position | None) -> Select[Any]:
    if after is None or after.key is None:
        return query
    mine = tuple_(order.key, order.tiebreak)
    theirs = tuple_(literal(after.key, order.key.type), literal(after.tiebreak, order.tiebreak.type))
    return query.where(mine < theirs if order.descending else mine > theirs)


def _ordered(query: Select[Any], order: Ordering) -> Select[Any]:
    if order.descending:
        return query.order_by(order.key.desc(), order.tiebreak.desc())
    return query.order_by(order.key.asc(), order.tiebreak.asc())


def _fetch(session: Session, query: Select[Any], offset: int, limit: int) -> list[tuple[Any, Any]]:
    if offset:
        query = query.offset(offset)
    return [(row[0], row[1]) for row in session.execute(query.limit(limit))]


def _count(session: Session, query: Select[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(query.subquery())) or 0)
