"""Users and their memberships in contracts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargobay.db.models import Membership, User


def by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == email.strip().lower()))


def get(session: Session, user_id: str) -> User | None:
    return session.get(User, user_id)


def membership(session: Session, user_id: str, contract_number: int | None = None) -> Membership | None:
    """The user's membership in ``contract_number``, or their first (lowest-numbered) one."""
    query = select(Membership).where(Membership.user_id == user_id).order_by(Membership.contract_number)
    if contract_number is not None:
        query = query.where(Membership.contract_number == contract_number)
    return session.scalars(query).first()
