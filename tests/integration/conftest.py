from __future__ import annotations

import pytest

from cargobay.db.engine import Database
from cargobay.services import registries, tenancy


@pytest.fixture
def contract_number(db: Database) -> int:
    return db.write_sync(lambda s: tenancy.create_contract(s, "acme").number)


@pytest.fixture
def registry_id(db: Database, contract_number: int) -> str:
    """A running registry in a fresh database (``db``)."""

    def work(session):  # type: ignore[no-untyped-def]
        registry = registries.create_registry(
            session, contract_number=contract_number, name="reg-one", location="de/fra"
        )
        registries.mark_running(session, registry.id)
        return registry.id

    return db.write_sync(work)
