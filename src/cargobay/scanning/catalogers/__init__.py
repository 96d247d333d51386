"""Catalogers: each knows which files it wants (by path alone) and how to read one of them.

Every cataloger parses one file at a time, so its result depends on that file alone and can be
cached with the layer. ``Selector`` picks the cataloger for a path with dictionary look-ups on the
base name, the extension and the parent directory before any cataloger's own check runs, because
it is asked once for every entry of every layer.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from cargobay.scanning.facts import FileFacts

MiB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Cataloger:
    """A file cataloger: ``wants`` is the precise test; the hint sets only narrow the candidates."""

    name: str
    wants: Callable[[str], bool]
    parse: Callable[[str, bytes], FileFacts]
    max_size: int
    basenames: frozenset[str] = frozenset()
    extensions: frozenset[str] = frozenset()
    parents: frozenset[str] = frozenset()


class Selector:
    """Finds the cataloger that wants a path, or None (the common case, so it must be cheap)."""

    def __init__(self, catalogers: Iterable[Cataloger]) -> None:
        self.catalogers = tuple(catalogers)
        self._by_basename: dict[str, list[Cataloger]] = {}
        self._by_extension: dict[str, list[Cataloger]] = {}
        self._by_parent: dict[str, list[Cataloger]] = {}
        for c in self.catalogers:
            for b in c.basenames:
                self._by_basename.setdefault(b, []).append(c)
            for e in c.extensions:
                self._by_extension.setdefault(e, []).append(c)
            for p in c.parents:
                self._by_parent.setdefault(p, []).append(c)

    def select(self, path: str) -> Cataloger | None:
        parent, _, base = path.rpartition("/")
        candidates = self._by_basename.get(base)
        if candidates is None:
            _, dot, ext = base.rpartition(".")
            candidates = self._by_extension.get(ext) if dot else None
            if candidates is None:
                candidates = self._by_parent.get(parent)
                if candidates is None:
                    return None
        for c in candidates:
            if c.wants(path):
                return c
        return None


def default_catalogers() -> tuple[Cataloger, ...]:
    from cargobay.scanning.catalogers import apk, dpkg, java, npm, osrelease, python, rpm

    return (
        osrelease.CATALOGER,
        dpkg.CATALOGER,
        apk.CATALOGER,
        rpm.CATALOGER,
        python.CATALOGER,
        npm.CATALOGER,
        java.CATALOGER,
    )
