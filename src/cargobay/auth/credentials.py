"""Checking credentials against the database: contract users (``user@domain``) and registry tokens.

Functions here run inside a database unit of work (a worker thread), so the deliberate slowness
of argon2 never lands on the event loop.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargobay.auth.passwords import dummy_hash, verify_password
from cargobay.auth.principals import Principal, TokenPrincipal, UserPrincipal
from cargobay.db.models import Membership, Token, User
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


def token_is_usable(token: Token, now: datetime | None = None) -> bool:
    if token.status != "enabled":
        return False
    return token.expiry_date is None or token.expiry_date > (now or utcnow())


def authenticate_user(
    session: Session, email: str, password: str, contract_number: int | None = None
) -> UserPrincipal | None:
    """A user with a valid password, acting in ``contract_number`` (default: their first contract)."""
    user = session.scalar(select(User).where(User.email == email.strip().lower()))
    if user is None:
        verify_password(dummy_hash(), password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    query = select(Membership).where(Membership.user_id == user.id).order_by(Membership.contract_number)
    if contract_number is not None:
        query = query.where(Membership.contract_number == contract_number)
    membership = session.scalars(query).first()
    if membership is None:
        return None
    return UserPrincipal(
        user.id, user.email, membership.contract_number, membership.role, membership.manage_registry
    )


def authenticate_token(session: Session, registry_id: str, name: str, password: str) -> TokenPrincipal | None:
    token = session.scalar(select(Token).where(Token.registry_id == registry_id, Token.name == name))
    if token is None:
        verify_password(dummy_hash(), password)
        return None
    if not verify_password(token.password_hash, password) or not token_is_usable(token):
        return None
    return TokenPrincipal(token.id, token.name, token.registry_id, scopes_from_json(token.scopes))


def authenticate_token_anywhere(session: Session, name: str, password: str) -> TokenPrincipal | None:
    """A token by name in any registry (``docker login`` names no registry); first match wins."""
    for token in session.scalars(select(Token).where(Token.name == name).limit(50)):
        if verify_password(token.password_hash, password) and token_is_usable(token):
            return TokenPrincipal(token.id, token.name, token.registry_id, scopes_from_json(token.scopes))
    return None


def token_still_usable(session: Session, token_id: str) -> bool:
    token = session.get(Token, token_id)
    return token is not None and token_is_usable(token)


def principal_for_subject(session: Session, subject: str, contract_number: int) -> Principal | None:
    """The credential behind a bearer JWT (``user:<id>`` / ``token:<id>``) with its current rights.

    Used where a JWT's granted scopes cannot answer a question (e.g. which repository a blob may be
    mounted from); a token disabled, expired or deleted since the JWT was issued yields None.
    """
    kind, _, ident = subject.partition(":")
    if kind == "token":
        token = session.get(Token, ident)
        if token is None or not token_is_usable(token):
            return None
        return TokenPrincipal(token.id, token.name, token.registry_id, scopes_from_json(token.scopes))
    if kind == "user":
        membership = session.get(Membership, (contract_number, ident))
        user = session.get(User, ident)
        if membership is None or user is None:
            return None
        return UserPrincipal(
            user.id, user.email, contract_number, membership.role, membership.manage_registry
        )
    return None
