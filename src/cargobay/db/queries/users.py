"""Users and their memberships in contracts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargobay.db.engine import Database
from cargobay.db.models import Contract, Membership, User


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


def contracts_of(session: Session, user_id: str) -> list[tuple[int, str, str, bool]]:
    """(number, name, role, manageRegistry) of every contract the user is a member of, by number."""
    rows = session.execute(
        select(Membership.contract_number, Contract.name, Membership.role, Membership.manage_registry)
        .join(Contract, Contract.number == Membership.contract_number)
        .where(Membership.user_id == user_id)
        .order_by(Membership.contract_number)
    )
    return [(int(n), str(name), str(role), bool(manage)) for n, name, role, manage in rows]


async def standing(db: Database, user_id: str, contract_number: int) -> tuple[str, str, bool] | None:
    """(stored password hash, role, manageRegistry) of a member of a contract: one indexed read."""
    row = await db.fetch_one(
        "SELECT u.password_hash, m.role, m.manage_registry FROM users u "
        "JOIN memberships m ON m.user_id = u.id WHERE u.id = ? AND m.contract_number = ?",
        user_id,
        contract_number,
    )
    return (str(row[0]), str(row[1]), bool(row[2])) if row is not None else None
