"""Checking credentials: contract users (``user@domain``) and registry tokens.

Functions taking a ``Session`` run inside a database unit of work (a worker thread), so the
deliberate slowness of argon2 never lands on the event loop. Every login costs exactly one password
check, whether or not the login exists (a dummy hash stands in), so timing tells nothing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from cargobay.auth.passwords import dummy_hash, verify_password
from cargobay.auth.principals import TokenPrincipal, UserPrincipal
from cargobay.db.models import Token
from cargobay.db.queries import tokens, users
from cargobay.db.types import utcnow
from cargobay.domain.scopes import scopes_from_json


def parse_basic(header: str | None) -> tuple[str, str] | None:
    if not header or header[:6].lower() != "basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    username, sep, password = decoded.partition(":")
    if not sep or not username:
        return None
    return username, password


def parse_bearer(header: str | None) -> str | None:
    if not header or header[:7].lower() != "bearer ":
        return None
    token = header[7:].strip()
    return token or None


def is_user_login(username: str) -> bool:
    return "@" in username


def password_lookup(password: str) -> str:
    """An index to the one token a password belongs to.

    Token passwords are generated (192 random bits) and never chosen by people, so a fast hash of
    one reveals nothing that argon2 protects, while it lets a login that names no registry find its
    token with one indexed read and one argon2 check, however many registries use the token's name.
    """
    return hashlib.sha256(b"cargobay token password\0" + password.encode()).hexdigest()


def token_is_usable(token: Token, now: datetime | None = None) -> bool:
    if token.status != "enabled":
        return False
    return token.expiry_date is None or token.expiry_date > (now or utcnow())


@dataclass(frozen=True, slots=True)
class TokenLogin:
    """A token that logged in; ``backfill`` is the password lookup to record on an older token."""

    principal: TokenPrincipal
    password_hash: str
    backfill: str | None = None


@dataclass(frozen=True, slots=True)
class UserLogin:
    principal: UserPrincipal
    password_hash: str


def token_principal(token: Token) -> TokenPrincipal:
    return TokenPrincipal(token.id, token.name, token.registry_id, scopes_from_json(token.scopes))


def user_principal(
    session: Session, user_id: str, email: str, contract_number: int | None
) -> UserPrincipal | None:
    """The user acting in ``contract_number`` (default: their first contract), with their role there."""
    membership = users.membership(session, user_id, contract_number)
    if membership is None:
        return None
    return UserPrincipal(
        user_id, email, membership.contract_number, membership.role, membership.manage_registry
    )


def authenticate_user(
    session: Session, email: str, password: str, contract_number: int | None = None
) -> UserPrincipal | None:
    """A user with a valid password, acting in ``contract_number`` (default: their first contract)."""
    login = user_login(session, email, password, contract_number)
    return login.principal if login is not None else None


def user_login(
    session: Session, email: str, password: str, contract_number: int | None = None
) -> UserLogin | None:
    """``authenticate_user`` with the stored hash it verified against (to remember the login)."""
    user = users.by_email(session, email)
    if user is None:
        verify_password(dummy_hash(), password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    principal = user_principal(session, user.id, user.email, contract_number)
    return UserLogin(principal, user.password_hash) if principal is not None else None


def authenticate_token(session: Session, registry_id: str, name: str, password: str) -> TokenLogin | None:
    """A token of one registry, by name."""
    token = tokens.in_registry(session, registry_id, name)
    if token is None:
        verify_password(dummy_hash(), password)
        return None
    return _check(token, password)


def authenticate_token_anywhere(session: Session, name: str, password: str) -> TokenLogin | None:
    """A token by name in any registry (a path-style ``docker login`` names no registry).

    The password's lookup finds the one token it belongs to. Tokens made before lookups existed have
    none: those of that name are tried one by one (and get their lookup once one verifies).
    """
    lookup = password_lookup(password)
    token = tokens.by_lookup(session, name, lookup)
    if token is not None:
        return _check(token, password)
    legacy = tokens.legacy_named(session, name)
    for candidate in legacy:
        login = _check(candidate, password)
        if login is not None:
            return login
    if not legacy:
        verify_password(dummy_hash(), password)
    return None


def _check(token: Token, password: str) -> TokenLogin | None:
    if not verify_password(token.password_hash, password) or not token_is_usable(token):
        return None
    backfill = password_lookup(password) if token.password_lookup is None else None
    return TokenLogin(token_principal(token), token.password_hash, backfill)
