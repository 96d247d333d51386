"""Access scopes: the scopes stored on a registry token, and the Docker token-service scopes.

A token scope is ``{type: repository|registry, name, actions}``; ``name`` may use ``*`` as a
wildcard matching any run of characters (``*`` alone: every repository). ``registry`` scopes allow
listing the catalog (restricted to names matching the glob); ``repository`` scopes allow their
actions on matching repositories. A scope with ``push`` must also carry ``pull`` (IONOS rule).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cargobay.domain.errors import InvalidInput

ACTIONS = ("pull", "push", "delete")
SCOPE_TYPES = ("repository", "registry")


@lru_cache(maxsize=4096)
def _glob(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


def glob_matches(pattern: str, name: str) -> bool:
    return _glob(pattern).match(name) is not None


@dataclass(frozen=True, slots=True)
class TokenScope:
    type: str
    name: str
    actions: frozenset[str]

    def covers(self, repository: str) -> bool:
        return glob_matches(self.name, repository)

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "actions": [a for a in ACTIONS if a in self.actions]}


def scope_from_text(text: str) -> dict[str, Any]:
    """``repository:team/*:pull,push`` (type, name, actions) as the JSON a token's scopes take;
    ``parse_token_scopes`` then judges it."""
    kind, sep, rest = text.partition(":")
    name, sep2, actions = rest.rpartition(":")
    if not sep or not sep2:
        raise InvalidInput(
            f"{text!r} is not TYPE:NAME:ACTIONS, e.g. repository:team/*:pull,push", field="scope"
        )
    return {"type": kind, "name": name, "actions": [a for a in actions.split(",") if a]}


def scopes_fingerprint(scopes: Iterable[TokenScope]) -> str:
    """A short digest of a registry token's scopes, the same for the same set in any order: a JWT
    carries the one its token had at issue, so a change of the token's scopes can be told."""
    canonical = json.dumps(sorted(json.dumps(s.as_json(), sort_keys=True) for s in scopes))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def parse_token_scopes(raw: Any, field: str = "scopes") -> list[TokenScope]:
    """Validate scopes given to a token, naming the offending field in every message."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise InvalidInput("must be an array of scopes", field=field)
    scopes: list[TokenScope] = []
    for i, item in enumerate(raw):
        where = f"{field}[{i}]"
        if not isinstance(item, dict):
            raise InvalidInput("must be an object with name, type and actions", field=where)
        kind = item.get("type")
        if kind not in SCOPE_TYPES:
            raise InvalidInput(
                f"must be one of {', '.join(SCOPE_TYPES)}, got {kind!r}", field=f"{where}.type"
            )
        name = item.get("name")
        if not isinstance(name, str) or not name or len(name) > 255:
            raise InvalidInput("must be a repository name or glob (1-255 characters)", field=f"{where}.name")
        if not re.fullmatch(r"[a-z0-9*._/-]+", name):
            raise InvalidInput(
                f"{name!r} may contain only a-z, 0-9, '.', '_', '-', '/' and '*'", field=f"{where}.name"
            )
        actions = item.get("actions")
        if actions is None:
            actions = []
        if not isinstance(actions, list) or not all(isinstance(a, str) for a in actions):
            raise InvalidInput("must be an array of strings", field=f"{where}.actions")
        unknown = [a for a in actions if a not in ACTIONS]
        if unknown:
            raise InvalidInput(
                f"names an unknown action {unknown[0]!r}; use pull, push or delete", field=f"{where}.actions"
            )
        if not actions:
            raise InvalidInput("must name at least one of pull, push, delete", field=f"{where}.actions")
        if "push" in actions and "pull" not in actions:
            raise InvalidInput("lists push, and push needs pull as well", field=f"{where}.actions")
        scopes.append(TokenScope(kind, name, frozenset(actions)))
    return scopes


def scopes_from_json(raw: list[Any]) -> tuple[TokenScope, ...]:
    """Scopes as stored in the database (already validated)."""
    return tuple(TokenScope(s["type"], s["name"], frozenset(s.get("actions") or ())) for s in raw)


@dataclass(frozen=True, slots=True)
class ResourceScope:
    """A Docker token-service scope: ``repository:team/app:pull,push`` or ``registry:catalog:*``."""

    type: str
    name: str
    actions: frozenset[str]

    def __str__(self) -> str:
        return f"{self.type}:{self.name}:{','.join(sorted(self.actions))}"

    def as_claim(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "actions": sorted(self.actions)}


def parse_resource_scopes(values: list[str]) -> list[ResourceScope]:
    """Parse ``scope`` query parameters (repeated, or space-separated in one value)."""
    scopes: list[ResourceScope] = []
    for value in values:
        for item in value.split():
            kind, sep, rest = item.partition(":")
            name, sep2, actions = rest.rpartition(":")
            if not sep or not sep2 or not kind or not name:
                continue
            # repository(plugin):name — a resource class in parentheses is ignored.
            kind = kind.split("(", 1)[0]
            scopes.append(ResourceScope(kind, name, frozenset(a for a in actions.split(",") if a)))
    return scopes
