"""Who a request acts as, after its credentials were checked."""

from __future__ import annotations

from dataclasses import dataclass, field

from cargobay.domain.scopes import ResourceScope, TokenScope

MANAGER_ROLES = frozenset({"owner", "admin"})


@dataclass(frozen=True, slots=True)
class UserPrincipal:
    """A contract member (management API, or Basic/JWT on the registry API)."""

    user_id: str
    email: str
    contract_number: int
    role: str
    manage_registry: bool

    @property
    def may_manage(self) -> bool:
        return self.role in MANAGER_ROLES or self.manage_registry


@dataclass(frozen=True, slots=True)
class TokenPrincipal:
    """A registry token (username = token name)."""

    token_id: str
    name: str
    registry_id: str
    scopes: tuple[TokenScope, ...]


@dataclass(frozen=True, slots=True)
class GrantPrincipal:
    """A bearer JWT from /auth/token: exactly the access granted when it was issued."""

    subject: str
    registry_ids: frozenset[str]
    grants: tuple[ResourceScope, ...] = field(default=())
    contract: int | None = None  # the contract a user subject acted in

    @property
    def lists_catalog(self) -> bool:
        return any(g.type == "registry" and g.name == "catalog" for g in self.grants)


Principal = UserPrincipal | TokenPrincipal | GrantPrincipal
