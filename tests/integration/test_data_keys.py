"""Per-registry data keys in a real database: first use, agreement between processes, rotation."""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import select, update

from cargobay.db.engine import Database
from cargobay.db.migrate import alembic_config, upgrade
from cargobay.db.models import EncryptionState, Registry
from cargobay.db.queries import encryption as encryption_queries
from cargobay.services import keys as key_service
from cargobay.services import registries, tenancy
from cargobay.services.encryption import EncryptionRequired, record_plaintext_writes
from cargobay.services.keys import DataKeys, activate, open_master_key_file, rotate_master_key
from cargobay.storage.base import IntegrityError
from cargobay.storage.keys import (
    MasterKeyFile,
    MasterKeyUnavailable,
    UnknownNamespace,
    key_id,
    write_key_file,
)

OLD, NEW = b"O" * 32, b"N" * 32


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(f"sqlite:///{tmp_path / 'cargobay.db'}")
    upgrade(database.engine)
    yield database
    database.dispose()


@pytest.fixture
def keyring(tmp_path: Path) -> MasterKeyFile:
    write_key_file(tmp_path / "master.key", [OLD])
    return MasterKeyFile(tmp_path / "master.key")


def make_registries(db: Database, count: int) -> list[str]:
    def work(session):  # type: ignore[no-untyped-def]
        contract = tenancy.create_contract(session, "c")
        return [
            registries.create_registry(
                session, contract_number=contract.number, name=f"reg{i}", location="de/fra"
            ).id
            for i in range(count)
        ]

    return db.write_sync(work)


def rows(db: Database) -> dict[str, tuple[bytes | None, str | None]]:
    def work(session):  # type: ignore[no-untyped-def]
        query = select(Registry.id, Registry.wrapped_data_key, Registry.master_key_id)
        return {r[0]: (r[1], r[2]) for r in session.execute(query)}

    return db.read_sync(work)


async def test_a_data_key_is_made_on_first_use_and_stored_wrapped(
    db: Database, keyring: MasterKeyFile
) -> None:
    (registry_id,) = make_registries(db, 1)
    activate(db, keyring)
    assert rows(db)[registry_id] == (None, None)
    data_key = await DataKeys(db, keyring).data_key(registry_id)
    wrapped, master = rows(db)[registry_id]
    assert master == key_id(OLD)
    assert wrapped is not None and data_key not in wrapped
    assert await DataKeys(db, keyring).data_key(registry_id) == data_key  # another process agrees


def test_processes_racing_to_make_a_data_key_agree_on_one(db: Database, keyring: MasterKeyFile) -> None:
    (registry_id,) = make_registries(db, 1)
    activate(db, keyring)
    barrier = threading.Barrier(4)
    results: list[bytes] = []

    def worker() -> None:
        barrier.wait()
        results.append(DataKeys(db, keyring)._load(registry_id))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 4 and len(set(results)) == 1


async def test_an_unknown_registry_has_no_data_key(db: Database, keyring: MasterKeyFile) -> None:
    activate(db, keyring)
    with pytest.raises(UnknownNamespace):
        await DataKeys(db, keyring).data_key("no-such-registry")


async def test_a_wrapped_key_does_not_open_in_another_registry_row(
    db: Database, keyring: MasterKeyFile
) -> None:
    first, second = make_registries(db, 2)
    activate(db, keyring)
    await DataKeys(db, keyring).data_key(first)
    wrapped, master = rows(db)[first]
    db.write_sync(
        lambda s: s.execute(
            update(Registry)
            .where(Registry.id == second)
            .values(wrapped_data_key=wrapped, master_key_id=master)
        )
    )
    with pytest.raises(IntegrityError):
        await DataKeys(db, keyring).data_key(second)


def test_activation_records_the_key_of_the_first_start(
    db: Database, keyring: MasterKeyFile, tmp_path: Path
) -> None:
    assert activate(db, keyring) == (key_id(OLD), False)
    write_key_file(tmp_path / "other.key", [NEW])
    with pytest.raises(MasterKeyUnavailable):
        activate(db, MasterKeyFile(tmp_path / "other.key"))  # the data keys need the old key


def test_a_master_key_is_generated_only_on_a_first_start(db: Database, tmp_path: Path) -> None:
    path = tmp_path / "data" / "master.key"
    keys = open_master_key_file(db, path, configured=False)
    assert path.exists() and keys.key_ids
    path.unlink()
    (registry_id,) = make_registries(db, 1)
    activate(db, keys)
    asyncio.run(DataKeys(db, keys).data_key(registry_id))
    with pytest.raises(MasterKeyUnavailable):
        open_master_key_file(db, path, configured=False)  # a new key would not open the data keys
    with pytest.raises(MasterKeyUnavailable):
        open_master_key_file(db, tmp_path / "configured.key", configured=True)


async def test_rotation_rewraps_every_data_key_and_keeps_it(db: Database, keyring: MasterKeyFile) -> None:
    registry_ids = make_registries(db, 5)
    activate(db, keyring)
    before = {r: await DataKeys(db, keyring).data_key(r) for r in registry_ids}
    keyring.install(NEW)
    assert rotate_master_key(db, keyring, key_id(NEW), batch=2) == 5
    assert {master for _, master in rows(db).values()} == {key_id(NEW)}
    assert keyring.retain(db.read_sync(encryption_queries.master_key_ids_in_use)) == [key_id(OLD)]
    after = {r: await DataKeys(db, keyring).data_key(r) for r in registry_ids}
    assert after == before
    assert rotate_master_key(db, keyring, key_id(NEW)) == 0


async def test_an_interrupted_rotation_leaves_every_key_readable_and_a_rerun_finishes(
    db: Database, keyring: MasterKeyFile, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry_ids = make_registries(db, 5)
    activate(db, keyring)
    before = {r: await DataKeys(db, keyring).data_key(r) for r in registry_ids}
    keyring.install(NEW)
    passes = 0

    def crash(name: str) -> None:
        nonlocal passes
        if name == "rotate.rewrapped":
            passes += 1
            if passes == 2:
                raise SystemExit("power cut")

    monkeypatch.setattr(key_service, "crash_point", crash)
    with pytest.raises(SystemExit):
        rotate_master_key(db, keyring, key_id(NEW))
    assert Counter(master for _, master in rows(db).values()) == {key_id(NEW): 2, key_id(OLD): 3}
    assert {r: await DataKeys(db, keyring).data_key(r) for r in registry_ids} == before
    monkeypatch.undo()
    assert rotate_master_key(db, keyring, key_id(NEW)) == 3
    assert {r: await DataKeys(db, keyring).data_key(r) for r in registry_ids} == before


async def test_data_keys_made_during_a_rotation_use_the_new_key(db: Database, keyring: MasterKeyFile) -> None:
    first, second = make_registries(db, 2)
    activate(db, keyring)
    await DataKeys(db, keyring).data_key(first)
    stale = MasterKeyFile(keyring.path)  # a server that loaded the key file before the rotation
    keyring.install(NEW)
    db.write_sync(encryption_queries.set_active_key, key_id(NEW))
    await DataKeys(db, stale).data_key(second)
    assert rows(db)[second][1] == key_id(NEW)


def test_switching_encryption_off_is_refused_once_data_is_sealed(
    db: Database, keyring: MasterKeyFile
) -> None:
    (registry_id,) = make_registries(db, 1)
    record_plaintext_writes(db)
    assert db.read_sync(lambda s: s.get(EncryptionState, 1).plaintext_may_exist)
    activate(db, keyring)
    asyncio.run(DataKeys(db, keyring).data_key(registry_id))
    with pytest.raises(EncryptionRequired):
        record_plaintext_writes(db)


def test_the_migration_assumes_plaintext_in_databases_that_hold_registries(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'old.db'}")
    config = alembic_config(db.engine)
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "d2e054a7564c")
    with db.engine.begin() as connection:  # rows as the first release wrote them (today's model has more)
        connection.exec_driver_sql(
            "INSERT INTO contracts (number, name, created_at) VALUES (1, 'c', '2026-01-01')"
        )
        connection.exec_driver_sql(
            "INSERT INTO registries (id, contract_number, name, location, state, vulnerability_scanning, "
            "allowlist, storage_bytes, created_at, created_by, created_by_user_id) "
            "VALUES ('r1', 1, 'reg0', 'de/fra', 'Running', 1, '[]', 0, '2026-01-01', '', '')"
        )
    upgrade(db.engine)
    state = db.read_sync(lambda s: s.get(EncryptionState, 1))
    assert state.plaintext_may_exist and state.active_master_key_id is None
    with db.engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "d2e054a7564c")
    db.dispose()


def test_a_fresh_database_holds_no_plaintext(db: Database) -> None:
    assert not db.read_sync(lambda s: s.get(EncryptionState, 1).plaintext_may_exist)
