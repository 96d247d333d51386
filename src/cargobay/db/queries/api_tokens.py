"""Management-API bearer tokens issued by /auth/v1/tokens/generate (rows only: the JWTs are not stored)."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from cargobay.db.models import ApiToken
from cargobay.db.types import utcnow


def add(session: Session, row: ApiToken) -> None:
    session.add(row)


def get(session: Session, token_id: str) -> ApiToken | None:
    return session.get(ApiToken, token_id)


def of_user(session: Session, user_id: str, contract_number: int) -> list[ApiToken]:
    """A user's tokens in one contract, oldest first."""
    return list(
        session.scalars(
            select(ApiToken)
            .where(ApiToken.user_id == user_id, ApiToken.contract_number == contract_number)
            .order_by(ApiToken.created_at, ApiToken.id)
        )
    )


def remove(session: Session, row: ApiToken) -> None:
    session.delete(row)


def delete_of_user(
    session: Session, user_id: str, contract_number: int, *, expired_only: bool, token_id: str | None
) -> int:
    """Delete a user's tokens in one contract: all, the expired ones, or the one ``token_id``."""
    query = delete(ApiToken).where(ApiToken.user_id == user_id, ApiToken.contract_number == contract_number)
    if expired_only:
        query = query.where(ApiToken.expires_at <= utcnow())
    if token_id is not None:
        query = query.where(ApiToken.id == token_id)
    return int(session.execute(query).rowcount or 0)  # type: ignore[attr-defined]


def delete_expired(session: Session) -> int:
    result = session.execute(delete(ApiToken).where(ApiToken.expires_at <= utcnow()))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
