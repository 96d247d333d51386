"""Contracts, users, memberships and the first-start bootstrap, on both databases."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cargobay.auth.passwords import verify_password
from cargobay.db.engine import Database
from cargobay.db.models import Contract, Membership, User
from cargobay.services import tenancy


def test_bootstrap_creates_one_contract_with_its_owner(db: Database) -> None:
    result = db.write_sync(tenancy.bootstrap, "Owner@Example.com", "a-long-password")
    assert result is not None
    assert result.email == "owner@example.com" and result.generated_password is None

    def check(session: Session) -> None:
        user = tenancy.find_user(session, "owner@example.com")
        assert user is not None
        membership = session.get(Membership, (result.contract_number, user.id))
        assert membership is not None and membership.role == "owner" and membership.manage_registry

    db.read_sync(check)


def test_bootstrap_runs_once(db: Database) -> None:
    assert db.write_sync(tenancy.bootstrap, None, None) is not None
    assert db.write_sync(tenancy.bootstrap, None, None) is None
    assert db.read_sync(lambda s: s.scalar(select(func.count()).select_from(Contract))) == 1


def test_bootstrap_generates_a_password_when_none_is_given(db: Database) -> None:
    result = db.write_sync(tenancy.bootstrap, None, None)
    assert result is not None and result.generated_password
    user = db.read_sync(tenancy.find_user, result.email)
    assert user is not None and verify_password(user.password_hash, result.generated_password)


def test_duplicate_contract_number_is_refused(db: Database) -> None:
    db.write_sync(lambda s: tenancy.create_contract(s, "a", 31000001))
    with pytest.raises(tenancy.TenancyError):
        db.write_sync(lambda s: tenancy.create_contract(s, "b", 31000001))


def test_duplicate_user_is_refused_case_insensitively(db: Database) -> None:
    db.write_sync(tenancy.create_user, "dev@example.com", "password-1")
    with pytest.raises(tenancy.TenancyError):
        db.write_sync(tenancy.create_user, "DEV@example.com", "password-2")


def test_user_email_is_unique_in_the_schema(db: Database) -> None:
    from sqlalchemy.exc import IntegrityError

    def insert_twice(session: Session) -> None:
        session.add(User(id="u1", email="same@example.com", password_hash="x"))
        session.add(User(id="u2", email="same@example.com", password_hash="x"))
        session.flush()

    with pytest.raises(IntegrityError):
        db.write_sync(insert_twice)


def test_membership_role_is_updated_in_place(db: Database) -> None:
    def work(session: Session) -> tuple[str, bool, int]:
        contract = tenancy.create_contract(session, "c")
        user = tenancy.create_user(session, "member@example.com", "password-1")
        tenancy.add_member(session, contract.number, user, "user")
        membership = tenancy.add_member(session, contract.number, user, "admin", manage_registry=True)
        count = session.scalar(select(func.count()).select_from(Membership))
        return membership.role, membership.manage_registry, int(count or 0)

    assert db.write_sync(work) == ("admin", True, 1)


def test_membership_needs_a_known_contract_and_role(db: Database) -> None:
    user = db.write_sync(tenancy.create_user, "x@example.com", "password-1")
    with pytest.raises(tenancy.TenancyError):
        db.write_sync(lambda s: tenancy.add_member(s, 999, s.merge(user), "user"))
    number = db.write_sync(lambda s: tenancy.create_contract(s, "c").number)
    with pytest.raises(tenancy.TenancyError):
        db.write_sync(lambda s: tenancy.add_member(s, number, s.merge(user), "root"))


def test_deleting_a_contract_cascades_to_memberships(db: Database) -> None:
    def setup(session: Session) -> int:
        contract = tenancy.create_contract(session, "c")
        user = tenancy.create_user(session, "gone@example.com", "password-1")
        tenancy.add_member(session, contract.number, user, "owner")
        return contract.number

    number = db.write_sync(setup)
    db.write_sync(lambda s: s.delete(s.get(Contract, number)))
    assert db.read_sync(lambda s: s.scalar(select(func.count()).select_from(Membership))) == 0
