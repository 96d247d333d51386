"""Path-style token logins read one index range, however many registries use the token's name.

The scaling benchmark found a token request as `ci` growing from 1.8 ms to 44 ms between 100 and
50,000 registries holding a `ci` token: the name index alone made both lookups read every token of
the name. These are the two statements a path-style login runs, their answers and their plans.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import insert

from cargobay.db.engine import Database
from cargobay.db.models import Registry, Token
from cargobay.db.queries import tokens
from cargobay.db.types import utcnow
from tests.support import plans


def _seed(db: Database, registry_id: str, contract_number: int, count: int) -> None:
    """``count`` registries with a token named ``ci`` each: the first three have no lookup (older)."""
    now = utcnow()

    def work(session: Any) -> None:
        template = session.get(Registry, registry_id)
        for i in range(count):
            rid = f"00000000-0000-0000-0000-{i:012d}"
            session.execute(
                insert(Registry).values(
                    id=rid,
                    contract_number=contract_number,
                    name=f"reg-{i:05d}",
                    location=template.location,
                    created_at=now,
                    created_by="test",
                    created_by_user_id="test",
                    state=template.state,
                )
            )
            session.execute(
                insert(Token).values(
                    id=f"10000000-0000-0000-0000-{i:012d}",
                    registry_id=rid,
                    name="ci",
                    password_hash="x",
                    password_lookup=None if i < 3 else f"{i:064x}",
                    status="enabled",
                    scopes=[],
                    created_at=now - timedelta(seconds=count - i),
                    created_by="test",
                    created_by_user_id="test",
                )
            )

    db.write_sync(work)


def _plans_of(db: Database, run: Any) -> list[str]:
    with plans.statements(db) as seen:
        db.read_sync(run)
    selects = [(s, p) for s, p in seen if s.lstrip().upper().startswith("SELECT")]
    return [plans.plan(db, s, p, sorts=True) for s, p in selects]


def test_a_login_by_name_reads_one_range_of_the_name_lookup_index(
    db: Database, registry_id: str, contract_number: int
) -> None:
    _seed(db, registry_id, contract_number, 300)

    found = db.read_sync(lambda s: tokens.by_lookup(s, "ci", f"{150:064x}"))
    assert found is not None and found.id == f"10000000-0000-0000-0000-{150:012d}"
    assert db.read_sync(lambda s: tokens.by_lookup(s, "ci", "f" * 64)) is None
    legacy = db.read_sync(lambda s: [t.id for t in tokens.legacy_named(s, "ci")])
    assert legacy == [f"10000000-0000-0000-0000-{i:012d}" for i in range(3)]  # oldest first

    for plan in _plans_of(db, lambda s: tokens.by_lookup(s, "ci", "f" * 64)) + _plans_of(
        db, lambda s: tokens.legacy_named(s, "ci")
    ):
        if db.is_sqlite:
            assert "ix_tokens_name_lookup (name=? AND password_lookup" in plan, plan
            assert "TEMP B-TREE" not in plan, plan
        else:  # both columns bound the range; PostgreSQL sorts what it holds (the legacy tokens only)
            assert "Index Scan using ix_tokens_name_lookup" in plan, plan
            assert "Index Cond: (((name)::text = 'ci'::text) AND (" in plan, plan
            assert "password_lookup" in plan, plan
