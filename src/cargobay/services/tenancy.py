"""Contracts, users and memberships; the first-start bootstrap of a contract and its owner."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass

from sqlalchemy.orm import Session

from cargobay.auth.passwords import generate_password, hash_password
from cargobay.db.engine import Database
from cargobay.db.models import Contract, Membership, User
from cargobay.db.queries import registries, users
from cargobay.domain.errors import DomainError

ROLES = ("owner", "admin", "user")


class TenancyError(DomainError):
    """A tenancy rule was broken (unknown contract, duplicate user, bad role...)."""


@dataclass(frozen=True)
class BootstrapResult:
    contract_number: int
    email: str
    generated_password: str | None


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    local, sep, domain = email.partition("@")
    if not sep or not local or not domain or " " in email:
        raise TenancyError(f"{email!r} is not a user@domain login")
    return email


def create_contract(session: Session, name: str, number: int | None = None) -> Contract:
    if number is None:
        number = _free_contract_number(session)
    elif registries.contract_exists(session, number):
        raise TenancyError(f"contract {number} already exists")
    contract = Contract(number=number, name=name)
    session.add(contract)
    session.flush()
    return contract


def _free_contract_number(session: Session) -> int:
    while True:
        number = 10_000_000 + secrets.randbelow(90_000_000)
        if not registries.contract_exists(session, number):
            return number


def create_user(session: Session, email: str, password: str) -> User:
    email = normalise_email(email)
    if users.by_email(session, email) is not None:
        raise TenancyError(f"user {email} already exists")
    if len(password) < 8:
        raise TenancyError("password must have at least 8 characters")
    user = User(id=str(uuid.uuid4()), email=email, password_hash=hash_password(password))
    session.add(user)
    session.flush()
    return user


def add_member(
    session: Session, contract_number: int, user: User, role: str, manage_registry: bool = False
) -> Membership:
    if role not in ROLES:
        raise TenancyError(f"role must be one of {', '.join(ROLES)}")
    if not registries.contract_exists(session, contract_number):
        raise TenancyError(f"contract {contract_number} does not exist")
    membership = users.membership(session, user.id, contract_number)
    if membership is None:
        membership = Membership(contract_number=contract_number, user_id=user.id)
        session.add(membership)
    membership.role = role
    membership.manage_registry = manage_registry
    session.flush()
    return membership


def find_user(session: Session, email: str) -> User | None:
    return users.by_email(session, email)


def bootstrap(session: Session, admin_user: str | None, admin_password: str | None) -> BootstrapResult | None:
    """Create the first contract and its owner when the database has no contract yet."""
    if registries.contract_numbers(session):
        return None
    email = normalise_email(admin_user or "admin@cargobay.local")
    generated = None
    if admin_password is None:
        generated = admin_password = generate_password(18)
    contract = create_contract(session, "default")
    user = find_user(session, email) or create_user(session, email, admin_password)
    add_member(session, contract.number, user, "owner", manage_registry=True)
    return BootstrapResult(contract.number, email, generated)


@dataclass(frozen=True)
class NewContract:
    number: int
    generated_password: str | None  # the owner's, when one was made for a new owner


@dataclass(frozen=True)
class NewMember:
    email: str
    existed: bool  # the user existed before (their password was left as it was)
    generated_password: str | None


@dataclass(frozen=True)
class ContractMembership:
    """A contract a user belongs to, with the user's role there (the console's contract switcher)."""

    number: int
    name: str
    role: str
    manage_registry: bool


class Tenancy:
    """Contracts and their users, as an operator manages them (the CLI)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def bootstrap(self, admin_user: str | None, admin_password: str | None) -> BootstrapResult | None:
        return await self.db.write(bootstrap, admin_user, admin_password)

    async def create_contract(
        self, name: str, number: int | None, owner: str | None, password: str | None
    ) -> NewContract:
        """A contract, with ``owner`` (created when new, with ``password`` or a generated one) as owner."""

        def work(session: Session) -> NewContract:
            contract = create_contract(session, name, number)
            generated = None
            if owner:
                user = find_user(session, owner)
                if user is None:
                    secret = password or generate_password(18)
                    generated = None if password else secret
                    user = create_user(session, owner, secret)
                add_member(session, contract.number, user, "owner", manage_registry=True)
            return NewContract(contract.number, generated)

        return await self.db.write(work)

    async def add_user(
        self, email: str, contract: int, role: str, manage_registry: bool, password: str | None
    ) -> NewMember:
        """Create a user (or take the existing one) and give them ``role`` in ``contract``."""

        def work(session: Session) -> NewMember:
            user = find_user(session, email)
            existed = user is not None
            generated = None
            if user is None:
                secret = password or generate_password(18)
                generated = None if password else secret
                user = create_user(session, email, secret)
            add_member(session, contract, user, role, manage_registry)
            return NewMember(user.email, existed, generated)

        return await self.db.write(work)

    async def contracts_of(self, user_id: str) -> list[ContractMembership]:
        """Every contract the user is a member of, lowest number first."""
        rows = await self.db.read(users.contracts_of, user_id)
        return [ContractMembership(*row) for row in rows]

    async def only_contract(self) -> int:
        """The installation's contract when there is exactly one (commands that need no choice)."""
        numbers = await self.db.read(registries.contract_numbers)
        if len(numbers) != 1:
            raise TenancyError(
                "several contracts exist: pass --contract" if numbers else "no contract exists"
            )
        return numbers[0]
