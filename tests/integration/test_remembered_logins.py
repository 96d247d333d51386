"""Basic logins are remembered (no argon2 check again) but never outlive a change to the credential:
every use re-reads the row, so a disabled token, a new password or a new role count at once."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import delete, update

from cargobay.auth.jwt_tokens import TokenSigner
from cargobay.auth.passwords import hash_password
from cargobay.auth.principals import TokenPrincipal, UserPrincipal
from cargobay.auth.registry_access import AccessRefused, Caller, RegistryAccess
from cargobay.db.engine import Database
from cargobay.db.models import Membership, Registry, Token
from cargobay.services import tenancy
from tests.integration.test_login_cost import Checks, argon2_checks  # noqa: F401 (fixture)

USER, PASSWORD = "member@example.com", "member-password-1"


def _basic(username: str, password: str) -> Caller:
    value = base64.b64encode(f"{username}:{password}".encode()).decode()
    return Caller(f"Basic {value}", "127.0.0.1", "registry.test")


@pytest.fixture
def world(db: Database, registry_id: str, contract_number: int) -> tuple[str, str]:
    def work(session):  # type: ignore[no-untyped-def]
        user = tenancy.create_user(session, USER, PASSWORD)
        tenancy.add_member(session, contract_number, user, "admin")
        session.add(
            Token(
                id="t-1",
                registry_id=registry_id,
                name="robot",
                password_hash=hash_password("robot-pw"),
                scopes=[],
            )
        )
        return user.id

    user_id = db.write_sync(work)
    name = db.read_sync(lambda s: s.get(Registry, registry_id).name)
    return user_id, name


async def test_a_remembered_login_costs_no_second_password_check(
    db: Database,
    world: tuple[str, str],
    argon2_checks: Checks,  # noqa: F811
) -> None:
    access = RegistryAccess(db, TokenSigner(b"k" * 32))
    _, registry = world
    for _ in range(5):
        granted = await access.check(_basic(USER, PASSWORD), registry, None, None, frozenset())
        assert isinstance(granted.principal, UserPrincipal)
    assert argon2_checks.count == 1


async def test_a_new_role_a_lost_membership_and_a_disabled_token_count_at_once(
    db: Database, world: tuple[str, str], contract_number: int
) -> None:
    access = RegistryAccess(db, TokenSigner(b"k" * 32))
    user_id, registry = world
    first = await access.check(_basic(USER, PASSWORD), registry, "app", "app", frozenset({"push"}))
    assert "push" in first.actions
    db.write_sync(
        lambda s: s.execute(update(Membership).where(Membership.user_id == user_id).values(role="user"))
    )
    with pytest.raises(AccessRefused):  # a plain member may pull, not push
        await access.check(_basic(USER, PASSWORD), registry, "app", "app", frozenset({"push"}))
    db.write_sync(lambda s: s.execute(delete(Membership).where(Membership.user_id == user_id)))
    with pytest.raises(AccessRefused):
        await access.check(_basic(USER, PASSWORD), registry, None, None, frozenset())

    token = await access.check(_basic("robot", "robot-pw"), registry, None, None, frozenset())
    assert isinstance(token.principal, TokenPrincipal)
    db.write_sync(lambda s: s.execute(update(Token).values(status="disabled")))
    with pytest.raises(AccessRefused):
        await access.check(_basic("robot", "robot-pw"), registry, None, None, frozenset())
    db.write_sync(
        lambda s: s.execute(update(Token).values(status="enabled", password_hash=hash_password("new-pw")))
    )
    with pytest.raises(AccessRefused):
        await access.check(_basic("robot", "robot-pw"), registry, None, None, frozenset())
