"""Who may see and change what in the management API.

Everyone in a contract reads what the contract holds; only owners, admins and holders of
``manageRegistry`` change registries and tokens. Another contract's registry does not exist for the
caller (404, never 403), so ids of other tenants cannot be probed.
"""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from cargobay.auth.principals import UserPrincipal
from cargobay.db.models import Registry
from cargobay.db.queries import registries
from cargobay.domain.errors import InvalidInput, NotFound, PermissionDenied

MANAGERS = "contract owners, admins and users with the manageRegistry permission"


def require_manager(actor: UserPrincipal, what: str) -> None:
    if not actor.may_manage:
        raise PermissionDenied(f"only {MANAGERS} may {what}")


def parse_id(value: str, field: str) -> str:
    """A UUID path parameter in canonical lower-case form, or a 400 naming the parameter."""
    try:
        parsed = uuid.UUID(value)
    except (ValueError, AttributeError):
        raise InvalidInput(f"{value[:80]!r} is not a UUID", field=field) from None
    canonical = str(parsed)
    if value.lower() != canonical:
        raise InvalidInput(f"{value[:80]!r} is not a UUID in 8-4-4-4-12 form", field=field)
    return canonical


def visible_registry(session: Session, actor: UserPrincipal, registry_id: str) -> Registry:
    registry = registries.get(session, registry_id)
    if registry is None or registry.contract_number != actor.contract_number:
        raise NotFound("registry", registry_id)
    return registry
