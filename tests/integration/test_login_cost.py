"""What a login costs: exactly one argon2 check, whether the login exists or not and however many
registries use a token's name; found through indexes, never a scan of ``tokens``. SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from cargobay.auth import credentials, passwords
from cargobay.auth.passwords import hash_password
from cargobay.db.engine import Database
from cargobay.db.models import Token
from cargobay.db.queries import tokens as token_queries
from cargobay.services import registries, tenancy

PASSWORD = "a-generated-token-password-0123456789"
USER = "someone@example.com"


@dataclass
class Checks:
    count: int = 0


@pytest.fixture
def argon2_checks(monkeypatch: pytest.MonkeyPatch) -> Iterator[Checks]:
    """Counts argon2 verifications, with the cache of past successes emptied so each one counts."""
    checks = Checks()
    real = passwords._hasher

    class Counting:
        def hash(self, password: str) -> str:
            return real.hash(password)

        def verify(self, stored: str, password: str) -> bool:
            checks.count += 1
            return real.verify(stored, password)

    monkeypatch.setattr(passwords, "_hasher", Counting())
    passwords.dummy_hash()  # made (with the real hasher) before counting starts
    passwords._verified.clear()
    yield checks
    passwords._verified.clear()


def _world(session: Session, registries_with_ci: int) -> list[str]:
    """A contract with a user, and ``registries_with_ci`` registries each holding a token named ``ci``
    whose password is ``PASSWORD`` + its index; returns the token ids in creation order."""
    contract = tenancy.create_contract(session, "acme")
    user = tenancy.create_user(session, USER, "user-password-1")
    tenancy.add_member(session, contract.number, user, "owner", manage_registry=True)
    one_hash = {i: hash_password(f"{PASSWORD}{i}") for i in range(registries_with_ci)}
    ids = []
    for i in range(registries_with_ci):
        registry = registries.create_registry(
            session, contract_number=contract.number, name=f"reg-{i:03d}", location="de/fra"
        )
        token = Token(
            id=f"00000000-0000-0000-0000-{i:012d}",
            registry_id=registry.id,
            name="ci",
            password_hash=one_hash[i],
            password_lookup=credentials.password_lookup(f"{PASSWORD}{i}"),
            status="enabled",
            scopes=[],
        )
        session.add(token)
        ids.append(token.id)
    session.flush()
    return ids


def _anywhere(db: Database, name: str, password: str) -> credentials.TokenLogin | None:
    return db.read_sync(credentials.authenticate_token_anywhere, name, password)


def test_a_path_style_login_checks_one_password_whatever_shares_the_name(
    db: Database, argon2_checks: Checks
) -> None:
    ids = db.write_sync(_world, 51)
    last = _anywhere(db, "ci", f"{PASSWORD}50")  # the 51st: once beyond the old limit of 50
    assert last is not None and last.principal.token_id == ids[50]
    assert argon2_checks.count == 1
    argon2_checks.count = 0
    assert _anywhere(db, "ci", "wrong") is None
    assert argon2_checks.count == 1


@pytest.mark.parametrize(
    "login",
    [
        pytest.param(lambda s: credentials.authenticate_user(s, USER, "wrong"), id="user-wrong-password"),
        pytest.param(
            lambda s: credentials.authenticate_user(s, "nobody@example.com", "x"), id="no-such-user"
        ),
        pytest.param(lambda s: credentials.authenticate_token_anywhere(s, "ci", "wrong"), id="token-wrong"),
        pytest.param(lambda s: credentials.authenticate_token_anywhere(s, "nobody", "x"), id="no-such-token"),
    ],
)
def test_every_failed_login_costs_the_same_one_check(
    db: Database, argon2_checks: Checks, login: object
) -> None:
    """A wrong password and a login that does not exist cost the same: one argon2 check."""
    db.write_sync(_world, 3)
    assert db.read_sync(login) is None  # type: ignore[arg-type]
    assert argon2_checks.count == 1


def test_an_older_token_without_a_lookup_still_logs_in_and_gets_one(db: Database) -> None:
    ids = db.write_sync(_world, 2)
    db.write_sync(lambda s: s.execute(text("UPDATE tokens SET password_lookup = NULL")))
    login = _anywhere(db, "ci", f"{PASSWORD}1")
    assert login is not None and login.principal.token_id == ids[1]
    assert login.backfill == credentials.password_lookup(f"{PASSWORD}1")
    db.write_sync(token_queries.record_lookup, ids[1], login.backfill)
    again = _anywhere(db, "ci", f"{PASSWORD}1")
    assert again is not None and again.backfill is None


def _plan(db: Database, sql: str, **params: object) -> str:
    """The plan, with PostgreSQL told to avoid scans it would pick for a tiny table: the question is
    whether an index serves the query at all."""

    def work(session: Session) -> list[object]:
        if not db.is_sqlite:
            session.execute(text("SET LOCAL enable_seqscan = off"))
        explain = "EXPLAIN QUERY PLAN " if db.is_sqlite else "EXPLAIN "
        return list(session.execute(text(explain + sql), params).all())

    return " ".join(str(part) for row in db.read_sync(work) for part in row)  # type: ignore[attr-defined]


def test_logins_find_tokens_through_indexes(db: Database) -> None:
    db.write_sync(_world, 3)
    by_lookup = _plan(db, "SELECT id FROM tokens WHERE password_lookup = :l AND name = :n", l="x", n="ci")
    by_name = _plan(db, "SELECT id FROM tokens WHERE name = :n AND password_lookup IS NULL", n="ci")
    for plan in (by_lookup, by_name):
        assert "ix_tokens_" in plan, plan
        assert "SCAN tokens" not in plan and "Seq Scan" not in plan, plan
