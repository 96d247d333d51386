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


def catalog_filter(
    principal: UserPrincipal | TokenPrincipal, registry_id: str, contract_number: int
) -> Callable[[str], bool] | None:
    """The catalog rule, the one place it is written: which repository names of a registry the
    principal may list, or None when it may list none of that registry.

    Users list every repository of their contract's registries; a token lists the repositories of
    its own registry that match one of its ``registry`` scopes. A bearer JWT is judged by the current
    rights of the credential it names (its grants only say that listing was asked for).
    """
    if isinstance(principal, UserPrincipal):
        return (lambda name: True) if principal.contract_number == contract_number else None
    if registry_id != principal.registry_id:
        return None
    globs = [s.name for s in principal.scopes if s.type == "registry"]
    if not globs:
        return None
    return lambda name: any(glob_matches(g, name) for g in globs)
