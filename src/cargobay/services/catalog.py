"""The catalog: repository names across the registries a caller may list, in lexical order.

Registries come in the order of ``name + "/"`` (which is the lexical order of the full names, as a
registry name holds no ``/``); each is read on its (registry, name) index from where the previous
page ended, so a page costs the same however many repositories or registries the server holds.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from dataclasses import dataclass

from cargobay.db.engine import Database
from cargobay.db.queries import repositories

_BATCH = 500
MAX_NAMES = 100_000  # a catalog request without ``n`` answers at most this many


@dataclass(frozen=True, slots=True)
class CatalogSource:
    """One registry's repositories, shown as ``prefix + name`` when ``visible(name)``."""

    registry_id: str
    prefix: str
    visible: Callable[[str], bool]


class Catalog:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(
        self, sources: AsyncIterable[CatalogSource], n: int | None, last: str | None
    ) -> tuple[list[str], bool]:
        """Names after ``last`` from ``sources`` (in catalog order, read only as far as the page
        needs); the flag says whether more remain."""
        want = n if n is not None else MAX_NAMES
        names: list[str] = []
        async for source in sources:
            after, skip = _start(source.prefix, last)
            if skip:
                continue
            while True:
                batch = await repositories.names_after(self.db, source.registry_id, after, _BATCH)
                for name in batch:
                    if source.visible(name):
                        names.append(source.prefix + name)
                        if len(names) > want:
                            return names[:want], True
                if len(batch) < _BATCH:
                    break
                after = batch[-1]
        return names, False


def _start(prefix: str, last: str | None) -> tuple[str | None, bool]:
    """Where a source's names begin after ``last``: (after, skip the whole source)."""
    if last is None or not prefix:
        return last, False
    if last.startswith(prefix):
        return last[len(prefix) :], False
    # Every name of the source starts with the prefix: all of them sort before or after ``last``.
    return None, last > prefix
