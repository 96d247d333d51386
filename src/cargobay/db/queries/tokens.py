"""Registry tokens: the lookups authentication makes, and the housekeeping of expired ones."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from cargobay.db.engine import Database
from cargobay.db.models import Token
from cargobay.db.types import utcnow
from cargobay.domain.scopes import TokenScope, scopes_from_json

LEGACY_LIMIT = 50  # tokens made before password lookups existed, tried per path-style login


def in_registry(session: Session, registry_id: str, name: str) -> Token | None:
    return session.scalar(select(Token).where(Token.registry_id == registry_id, Token.name == name))


def by_lookup(session: Session, name: str, lookup: str) -> Token | None:
    """The token whose password hashes to ``lookup`` (indexed; at most one in practice)."""
    return session.scalar(select(Token).where(Token.password_lookup == lookup, Token.name == name).limit(1))


def legacy_named(session: Session, name: str) -> list[Token]:
    """Tokens of that name made before password lookups existed (each needs a password check)."""
    return list(
        session.scalars(
            select(Token)
            .where(Token.name == name, Token.password_lookup.is_(None))
            .order_by(Token.created_at)
            .limit(LEGACY_LIMIT)
        )
    )


def record_lookup(session: Session, token_id: str, lookup: str) -> None:
    """Fill in the lookup of an older token whose password just verified."""
    session.execute(
        update(Token)
        .where(Token.id == token_id, Token.password_lookup.is_(None))
        .values(password_lookup=lookup)
        .execution_options(synchronize_session=False)
    )


def get(session: Session, token_id: str) -> Token | None:
    return session.get(Token, token_id)


async def usable_standing(db: Database, token_id: str) -> tuple[str, tuple[TokenScope, ...]] | None:
    """The stored password hash and scopes of a token that is enabled and unexpired (one indexed
    read), or None."""
    row = await db.fetch_one(
        "SELECT password_hash, scopes FROM tokens WHERE id = ? AND status = 'enabled' "
        "AND (expiry_date IS NULL OR expiry_date > ?)",
        token_id,
        db.timestamp(utcnow()),
    )
    if row is None:
        return None
    raw = json.loads(row[1]) if isinstance(row[1], str | bytes) else row[1]
    return str(row[0]), scopes_from_json(raw or [])


async def usable(db: Database, token_id: str) -> bool:
    """Whether the token exists, is enabled and has not expired: one indexed read."""
    row = await db.fetch_one(
        "SELECT 1 FROM tokens WHERE id = ? AND status = 'enabled' "
        "AND (expiry_date IS NULL OR expiry_date > ?)",
        token_id,
        db.timestamp(utcnow()),
    )
    return row is not None


def delete_expired(session: Session) -> int:
    """Remove every token whose expiry date has passed; returns how many went."""
    result = session.execute(
        delete(Token).where(Token.expiry_date.is_not(None), Token.expiry_date <= utcnow())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def _alive(registry_id: str) -> tuple[Any, ...]:
    return Token.registry_id == registry_id, or_(Token.expiry_date.is_(None), Token.expiry_date > utcnow())


def page(session: Session, registry_id: str, offset: int, limit: int) -> tuple[list[Token], int]:
    """A registry's unexpired tokens in name order, and how many there are: both read the index
    (registry_id, name, expiry_date) alone; only the page's rows are loaded."""
    alive = _alive(registry_id)
    total = int(session.scalar(select(func.count()).select_from(Token).where(*alive)) or 0)
    names = list(
        session.scalars(select(Token.name).where(*alive).order_by(Token.name).offset(offset).limit(limit))
    )
    if not names:
        return [], total
    rows = {
        t.name: t
        for t in session.scalars(select(Token).where(Token.registry_id == registry_id, Token.name.in_(names)))
    }
    return [rows[n] for n in names if n in rows], total


def name_taken(session: Session, registry_id: str, name: str) -> bool:
    return (
        session.scalar(select(Token.id).where(Token.registry_id == registry_id, Token.name == name))
        is not None
    )


def delete_expired_in(session: Session, registry_id: str) -> None:
    """Remove the registry's tokens whose expiry date has passed (their names become free again)."""
    session.execute(
        delete(Token).where(
            Token.registry_id == registry_id, Token.expiry_date.is_not(None), Token.expiry_date <= utcnow()
        )
    )


def add(session: Session, token: Token) -> None:
    session.add(token)
    session.flush()


def remove(session: Session, token: Token) -> None:
    session.delete(token)
