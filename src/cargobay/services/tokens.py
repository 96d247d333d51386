"""Registry tokens (docker credentials) for the management API.

The password is generated here, returned once by the call that creates the token, and stored only
as an argon2 hash. A token past its expiry date is gone: it fails at once on the registry API
(``token_is_usable``), is invisible here, and ``delete_expired_tokens`` removes the row.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import anyio.to_thread
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cargobay.auth.credentials import password_lookup
from cargobay.auth.passwords import generate_password, hash_password
from cargobay.auth.principals import UserPrincipal
from cargobay.db.engine import Database
from cargobay.db.models import Token
from cargobay.db.queries import tokens
from cargobay.db.types import utcnow
from cargobay.domain.errors import Conflict, InvalidInput, NotFound
from cargobay.domain.names import check_token_name
from cargobay.domain.patching import UNSET, Maybe
from cargobay.domain.scopes import TokenScope, parse_token_scopes, scopes_from_json
from cargobay.domain.timestamps import parse_timestamp, render_timestamp
from cargobay.services.ownership import require_manager, visible_registry

STATUSES = ("enabled", "disabled")
MIN_LIFETIME = timedelta(hours=1)
# A client that computes "now + 1 hour" and sends it a moment later must not be refused.
_CLOCK_SLACK = timedelta(minutes=1)


@dataclass(frozen=True, slots=True)
class TokenView:
    id: str
    registry_id: str
    name: str
    status: str
    expiry_date: datetime | None
    scopes: tuple[TokenScope, ...]
    created_at: datetime
    created_by: str
    created_by_user_id: str
    modified_at: datetime | None
    modified_by: str | None
    modified_by_user_id: str | None
    password: str = ""  # the secret, only in the answer to the call that created the token


@dataclass(frozen=True, slots=True)
class TokenSpec:
    name: str
    status: str
    expiry_date: datetime | None
    scopes: tuple[TokenScope, ...]


@dataclass(frozen=True, slots=True)
class TokenChanges:
    expiry_date: Maybe[datetime | None] = UNSET
    scopes: Maybe[tuple[TokenScope, ...]] = UNSET
    status: Maybe[str] = UNSET


def parse_status(value: object, field: str = "status") -> str:
    if value is None:
        return "enabled"
    if value not in STATUSES:
        raise InvalidInput(f"must be enabled or disabled, got {value!r}", field=field)
    assert isinstance(value, str)
    return value


def parse_expiry(value: object, field: str = "expiryDate") -> datetime | None:
    """None for no expiry; the one-hour rule is checked when the value is stored (``check_expiry``)."""
    if value is None:
        return None
    return parse_timestamp(value, field)


def check_expiry(expiry: datetime | None, field: str = "expiryDate", current: datetime | None = None) -> None:
    """A new expiry date must be at least one hour ahead; re-sending the stored one is fine
    (terraform repeats the expiry on every update, however close it is)."""
    if expiry is None or (current is not None and abs(expiry - current) < timedelta(seconds=1)):
        return
    if expiry < utcnow() + MIN_LIFETIME - _CLOCK_SLACK:
        raise InvalidInput(
            f"{render_timestamp(expiry)} must be at least one hour in the future "
            "(or null for a token that never expires)",
            field=field,
        )


def parse_spec(name: object, expiry: object, scopes: object, status: object) -> TokenSpec:
    """A token's full desired state; errors name the fields ``name``, ``status``, ``expiryDate``,
    ``scopes[i]…`` (the caller puts them under its own path)."""
    if not isinstance(name, str):
        raise InvalidInput("is required: the token name (also its docker username)", field="name")
    check_token_name(name)
    return TokenSpec(
        name=name,
        status=parse_status(status),
        expiry_date=parse_expiry(expiry),
        scopes=tuple(parse_token_scopes(scopes)),
    )


def scopes_json(scopes: tuple[TokenScope, ...]) -> list[dict[str, Any]]:
    return [s.as_json() for s in scopes]


def view_of(token: Token, password: str = "") -> TokenView:
    return TokenView(
        id=token.id,
        registry_id=token.registry_id,
        name=token.name,
        status=token.status,
        expiry_date=token.expiry_date,
        scopes=scopes_from_json(token.scopes or []),
        created_at=token.created_at,
        created_by=token.created_by,
        created_by_user_id=token.created_by_user_id,
        modified_at=token.modified_at,
        modified_by=token.modified_by,
        modified_by_user_id=token.modified_by_user_id,
        password=password,
    )


def delete_expired_tokens(session: Session) -> int:
    """Remove every token whose expiry date has passed; returns how many went."""
    return tokens.delete_expired(session)


def _find(session: Session, registry_id: str, token_id: str) -> Token:
    token = tokens.get(session, token_id)
    if token is None or token.registry_id != registry_id or not _usable_date(token):
        raise NotFound("token", token_id, f"token {token_id} not found in registry {registry_id}")
    return token


def _usable_date(token: Token) -> bool:
    return token.expiry_date is None or token.expiry_date > utcnow()


def _drop_expired(session: Session, registry_id: str) -> None:
    tokens.delete_expired_in(session, registry_id)


def _name_taken(name: str) -> Conflict:
    return Conflict(f"{name!r} is already used by another token of this registry", field="name")


class TokenService:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(
        self, actor: UserPrincipal, registry_id: str, offset: int, limit: int
    ) -> tuple[list[TokenView], int]:
        def work(session: Session) -> tuple[list[TokenView], int]:
            visible_registry(session, actor, registry_id)
            rows, total = tokens.page(session, registry_id, offset, limit)
            return [view_of(t) for t in rows], total

        return await self.db.read(work)

    async def get(self, actor: UserPrincipal, registry_id: str, token_id: str) -> TokenView:
        def work(session: Session) -> TokenView:
            visible_registry(session, actor, registry_id)
            return view_of(_find(session, registry_id, token_id))

        return await self.db.read(work)

    async def create(
        self, actor: UserPrincipal, registry_id: str, spec: TokenSpec, token_id: str | None = None
    ) -> TokenView:
        password, hashed = await _new_secret()

        def work(session: Session) -> TokenView:
            visible_registry(session, actor, registry_id)
            require_manager(actor, "create tokens")
            _drop_expired(session, registry_id)
            return _insert(session, actor, registry_id, spec, token_id, password, hashed)

        try:
            return await self.db.write(work)
        except IntegrityError:
            raise _name_taken(spec.name) from None

    async def put(
        self, actor: UserPrincipal, registry_id: str, token_id: str, spec: TokenSpec
    ) -> tuple[TokenView, bool]:
        """Create with the client's id, or replace status, expiry and scopes (the name may not change)."""
        password, hashed = await _new_secret()

        def work(session: Session) -> tuple[TokenView, bool]:
            visible_registry(session, actor, registry_id)
            require_manager(actor, "create or replace tokens")
            _drop_expired(session, registry_id)
            token = tokens.get(session, token_id)
            if token is None:
                return _insert(session, actor, registry_id, spec, token_id, password, hashed), True
            if token.registry_id != registry_id:
                raise Conflict(f"{token_id} is already used by a token of another registry", field="tokenId")
            if token.name != spec.name:
                raise InvalidInput(f"cannot change: token {token_id} is named {token.name!r}", field="name")
            _update(token, TokenChanges(spec.expiry_date, spec.scopes, spec.status), actor)
            session.flush()
            return view_of(token), False

        try:
            return await self.db.write(work)
        except IntegrityError:
            raise _name_taken(spec.name) from None

    async def patch(
        self, actor: UserPrincipal, registry_id: str, token_id: str, changes: TokenChanges
    ) -> TokenView:
        def work(session: Session) -> TokenView:
            visible_registry(session, actor, registry_id)
            token = _find(session, registry_id, token_id)
            require_manager(actor, "change tokens")
            _update(token, changes, actor)
            session.flush()
            return view_of(token)

        return await self.db.write(work)

    async def delete(self, actor: UserPrincipal, registry_id: str, token_id: str) -> None:
        def work(session: Session) -> None:
            visible_registry(session, actor, registry_id)
            token = _find(session, registry_id, token_id)
            require_manager(actor, "delete tokens")
            tokens.remove(session, token)

        await self.db.write(work)


async def _new_secret() -> tuple[str, str]:
    password = generate_password(24)
    return password, await anyio.to_thread.run_sync(hash_password, password)


def _insert(
    session: Session,
    actor: UserPrincipal,
    registry_id: str,
    spec: TokenSpec,
    token_id: str | None,
    password: str,
    hashed: str,
) -> TokenView:
    check_expiry(spec.expiry_date)
    if tokens.name_taken(session, registry_id, spec.name):
        raise _name_taken(spec.name)
    token = Token(
        id=token_id or str(uuid.uuid4()),
        registry_id=registry_id,
        name=spec.name,
        password_hash=hashed,
        password_lookup=password_lookup(password),
        status=spec.status,
        expiry_date=spec.expiry_date,
        scopes=scopes_json(spec.scopes),
        created_at=utcnow(),
        created_by=actor.email,
        created_by_user_id=actor.user_id,
    )
    tokens.add(session, token)
    return view_of(token, password)


def _update(token: Token, changes: TokenChanges, actor: UserPrincipal) -> None:
    if changes.expiry_date is not UNSET:
        check_expiry(changes.expiry_date, current=token.expiry_date)
        token.expiry_date = changes.expiry_date
    if changes.scopes is not UNSET:
        token.scopes = scopes_json(changes.scopes)
    if changes.status is not UNSET:
        token.status = changes.status
    token.modified_at = utcnow()
    token.modified_by = actor.email
    token.modified_by_user_id = actor.user_id
