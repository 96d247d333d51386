"""Names: repositories and tags (OCI distribution-spec grammar), registries and tokens (IONOS rules)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from cargobay.domain.errors import InvalidInput, InvalidName, InvalidTag

# distribution-spec: <name> ::= [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
REGISTRY_NAME_RE = re.compile(r"^[a-z][-a-z0-9]{1,61}[a-z0-9]$")
TOKEN_NAME_RE = re.compile(r"^[A-Za-z][-A-Za-z0-9]{0,61}[A-Za-z0-9]$")
MAX_REPOSITORY_LENGTH = 255


def is_repository_name(name: str) -> bool:
    return len(name) <= MAX_REPOSITORY_LENGTH and REPOSITORY_RE.match(name) is not None


def check_repository_name(name: str) -> str:
    if not is_repository_name(name):
        raise InvalidName(name)
    return name


def is_tag(value: str) -> bool:
    return TAG_RE.match(value) is not None


def check_tag(value: str) -> str:
    if not is_tag(value):
        raise InvalidTag(value)
    return value


def is_registry_name(name: str) -> bool:
    return REGISTRY_NAME_RE.match(name) is not None


def check_registry_name(name: str, field: str = "name") -> str:
    if not is_registry_name(name):
        raise InvalidInput(
            f"{name!r} is invalid: 3-63 characters of a-z, 0-9 and '-', "
            "starting with a letter and ending with a letter or digit",
            field=field,
        )
    return name


def check_token_name(name: str, field: str = "name") -> str:
    if TOKEN_NAME_RE.match(name) is None:
        raise InvalidInput(
            f"{name!r} is invalid: 2-63 characters of A-Z, a-z, 0-9 and '-', "
            "starting with a letter and ending with a letter or digit",
            field=field,
        )
    return name


T = TypeVar("T")


class CatalogOrder(Generic[T]):
    """Puts registries given in plain name order into the order of the catalog's names
    (``registry/repository``): ``name + "/"`` sorts a name after every name that extends it with
    ``-`` (``ab-c/`` < ``ab/`` < ``ab0/``), so such a name is held back until its extensions passed."""

    def __init__(self, name: Callable[[T], str]) -> None:
        self._name = name
        self._held: list[T] = []

    def add(self, item: T) -> list[T]:
        """Take the next item (plain order); returns those now due, in catalog order."""
        due: list[T] = []
        current = self._name(item)
        while self._held and not current.startswith(self._name(self._held[-1]) + "-"):
            due.append(self._held.pop())
        self._held.append(item)
        return due

    def rest(self) -> list[T]:
        """What is still held, in catalog order (after the last item)."""
        due, self._held = self._held[::-1], []
        return due


def catalog_order(items: Iterable[T], name: Callable[[T], str]) -> Iterator[T]:
    order = CatalogOrder(name)
    for item in items:
        yield from order.add(item)
    yield from order.rest()
