"""The catalog: repository names across the registries a caller may list, in lexical order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargobay.db.engine import Database
from cargobay.db.models import Registry, Repository


@dataclass(frozen=True, slots=True)
class CatalogSource:
    """One registry's repositories, shown as ``prefix + name`` when ``visible(name)``."""

    registry_id: str
    prefix: str
    visible: Callable[[str], bool]


async def list_catalog(
    db: Database, sources: list[CatalogSource], n: int | None, last: str | None
) -> tuple[list[str], bool]:
    """Names after ``last``; the flag says whether more remain after this page."""
    if not sources:
        return [], False
    by_id = {s.registry_id: s for s in sources}
    same_prefix = {s.prefix for s in sources} == {""}
    want = n if n is not None else 100_000
    names: list[str] = []

    def page(session: Session, after: str | None, size: int) -> list[tuple[str, str, str]]:
        shown = Repository.name if same_prefix else Registry.name + "/" + Repository.name
        query = (
            select(shown, Repository.registry_id, Repository.name)
            .join(Registry, Registry.id == Repository.registry_id)
            .where(Repository.registry_id.in_(list(by_id)))
            .order_by(shown)
            .limit(size)
        )
        if after is not None:
            query = query.where(shown > after)
        return [(r[0], r[1], r[2]) for r in session.execute(query)]

    after = last
    while len(names) <= want:
        batch = await db.read(page, after, 500)
        if not batch:
            break
        for shown_name, registry_id, repository in batch:
            if by_id[registry_id].visible(repository):
                names.append(shown_name)
                if len(names) > want:
                    break
        after = batch[-1][0]
        if len(batch) < 500:
            break
    more = len(names) > want
    return names[:want], more
