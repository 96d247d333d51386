"""Who may do what on the registry API, written as one table.

Each row names a kind of principal, a condition, and the actions it grants on a repository.
Everything not granted by some row is denied.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from cargobay.auth.principals import GrantPrincipal, Principal, TokenPrincipal, UserPrincipal
from cargobay.domain.scopes import ACTIONS, glob_matches


@dataclass(frozen=True, slots=True)
class Target:
    """A repository (or the catalog, when ``repository`` is None) of one registry."""

    registry_id: str
    contract_number: int
    repository: str | None
    client_name: str | None = None  # the name as the client spells it (JWT grants use it)


Grant = Callable[[Principal, Target], frozenset[str]]
ALL = frozenset(ACTIONS)
NONE: frozenset[str] = frozenset()


def _manager_of_contract(p: Principal, t: Target) -> frozenset[str]:
    if isinstance(p, UserPrincipal) and p.contract_number == t.contract_number and p.may_manage:
        return ALL
    return NONE


def _member_of_contract(p: Principal, t: Target) -> frozenset[str]:
    if isinstance(p, UserPrincipal) and p.contract_number == t.contract_number:
        return frozenset({"pull"})
    return NONE


def _token_repository_scopes(p: Principal, t: Target) -> frozenset[str]:
    if not isinstance(p, TokenPrincipal) or p.registry_id != t.registry_id or t.repository is None:
        return NONE
    actions: set[str] = set()
    for scope in p.scopes:
        if scope.type == "repository" and scope.covers(t.repository):
            actions |= scope.actions
    return frozenset(actions)


def _token_registry_scopes(p: Principal, t: Target) -> frozenset[str]:
    """A registry scope lets a token list the catalog (names matching its glob)."""
    if not isinstance(p, TokenPrincipal) or p.registry_id != t.registry_id or t.repository is not None:
        return NONE
    if any(scope.type == "registry" for scope in p.scopes):
        return frozenset({"catalog"})
    return NONE


def _jwt_grants(p: Principal, t: Target) -> frozenset[str]:
    if not isinstance(p, GrantPrincipal) or t.registry_id not in p.registry_ids:
        return NONE
    actions: set[str] = set()
    for grant in p.grants:
        if t.repository is None:
            if grant.type == "registry" and grant.name == "catalog":
                actions.add("catalog")
        elif grant.type == "repository" and grant.name == t.client_name:
            actions |= grant.actions
    return frozenset(actions)


RULES: tuple[tuple[str, Grant], ...] = (
    ("contract owners, admins and registry managers: everything in their contract", _manager_of_contract),
    ("other contract members: pull in their contract", _member_of_contract),
    ("registry tokens: the actions of their repository scopes", _token_repository_scopes),
    ("registry tokens with a registry scope: the catalog", _token_registry_scopes),
    ("bearer JWTs: what was granted at issue", _jwt_grants),
)


def allowed_actions(principal: Principal, target: Target) -> frozenset[str]:
    actions: set[str] = set()
    for _description, grant in RULES:
        actions |= grant(principal, target)
    if target.repository is None and isinstance(principal, UserPrincipal) and actions:
        actions.add("catalog")
    return frozenset(actions)


def catalog_filter(principal: Principal, registry_id: str) -> Callable[[str], bool]:
    """Which repository names of a registry the principal may see in the catalog."""
    if isinstance(principal, UserPrincipal):
        return lambda name: True
    if isinstance(principal, TokenPrincipal):
        if registry_id != principal.registry_id:
            return lambda name: False
        globs = [s.name for s in principal.scopes if s.type == "registry"]
        return lambda name: any(glob_matches(g, name) for g in globs)
    return lambda name: True
