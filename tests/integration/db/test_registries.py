"""Registry rows: creation, lookup, and the global uniqueness of names, on both databases."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cargobay.db.engine import Database
from cargobay.db.models import Registry
from cargobay.db.queries.registries import info_by_name
from cargobay.domain.errors import InvalidInput
from cargobay.domain.registries import RegistryInfo
from cargobay.services import registries


def _create(session: Session, contract_number: int, name: str) -> str:
    registry = registries.create_registry(
        session,
        contract_number=contract_number,
        name=name,
        location="de/fra",
        gc_days=["Monday", "Friday"],
        gc_time="02:30:00+00:00",
        allowlist=["10.0.0.0/8"],
    )
    return registry.id


def test_created_registry_is_new_until_marked_running(db: Database, contract_number: int) -> None:
    registry_id = db.write_sync(_create, contract_number, "alpha")
    assert db.read_sync(lambda s: s.get(Registry, registry_id).state) == "New"
    db.write_sync(registries.mark_running, registry_id)
    assert db.read_sync(lambda s: s.get(Registry, registry_id).state) == "Running"


async def test_registry_reads_back_by_name(db: Database, contract_number: int) -> None:
    registry_id = db.write_sync(_create, contract_number, "alpha")
    info = await info_by_name(db, "alpha")  # the hot path's raw read
    assert info == RegistryInfo(registry_id, "alpha", contract_number, ("10.0.0.0/8",))
    row = db.read_sync(registries.get_by_name, "alpha")
    assert row is not None and row.gc_days == ["Monday", "Friday"] and row.storage_bytes == 0
    assert await info_by_name(db, "missing") is None


def test_registry_name_is_taken_across_contracts(db: Database, contract_number: int) -> None:
    from cargobay.services import tenancy

    db.write_sync(_create, contract_number, "alpha")
    other = db.write_sync(lambda s: tenancy.create_contract(s, "other").number)
    with pytest.raises(registries.RegistryNameTaken):
        db.write_sync(_create, other, "alpha")


def test_registry_needs_an_existing_contract(db: Database) -> None:
    with pytest.raises(InvalidInput, match="contract 424242 does not exist"):
        db.write_sync(_create, 424242, "alpha")


def test_concurrent_creation_of_one_name_leaves_one_registry(db: Database, contract_number: int) -> None:
    """The check in create_registry races; the unique index is what guarantees one winner."""
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def attempt() -> None:
        barrier.wait()
        try:
            db.write_sync(_create, contract_number, "racy")
            outcomes.append("created")
        except (registries.RegistryNameTaken, IntegrityError):
            outcomes.append("taken")

    threads = [threading.Thread(target=attempt) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["created"] + ["taken"] * 5
    assert db.read_sync(lambda s: s.scalar(select(func.count()).select_from(Registry))) == 1


def _set_allowlist(session: Session, registry_id: str, networks: list[str]) -> None:
    registry = session.get(Registry, registry_id)
    assert registry is not None
    registry.allowlist = networks


async def test_a_process_remembers_a_registry_for_at_most_a_second(
    db: Database, contract_number: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cargobay.db.queries import registries as rows

    clock = [1000.0]
    monkeypatch.setattr(rows.time, "monotonic", lambda: clock[0])
    memory = rows.InfoMemory()
    registry_id = db.write_sync(_create, contract_number, "alpha")
    assert (await memory.by_name(db, "alpha")).allowlist == ("10.0.0.0/8",)  # type: ignore[union-attr]
    # Changed through another process: this one answers from memory until the bound passes.
    db.write_sync(_set_allowlist, registry_id, ["192.0.2.0/24"])
    clock[0] += rows.INFO_SECONDS - 0.01
    assert (await memory.by_name(db, "alpha")).allowlist == ("10.0.0.0/8",)  # type: ignore[union-attr]
    clock[0] += 0.02
    assert (await memory.by_name(db, "alpha")).allowlist == ("192.0.2.0/24",)  # type: ignore[union-attr]
    # Changed through this process: seen at once.
    db.write_sync(_set_allowlist, registry_id, [])
    memory.forget()
    assert (await memory.by_name(db, "alpha")).allowlist == ()  # type: ignore[union-attr]
    # Unknown names are read each time (a registry created elsewhere is found at once).
    assert await memory.by_name(db, "beta") is None
    beta = db.write_sync(_create, contract_number, "beta")
    assert (await memory.by_name(db, "beta")).id == beta  # type: ignore[union-attr]
    # Deleted through this process: gone at once.
    db.write_sync(rows.delete, registry_id)
    memory.forget()
    assert await memory.by_name(db, "alpha") is None


async def test_a_read_that_raced_a_change_is_not_remembered(
    db: Database, contract_number: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cargobay.db.queries import registries as rows

    registry_id = db.write_sync(_create, contract_number, "alpha")
    memory = rows.InfoMemory()
    read = rows.info_by_name

    async def read_then_change(database: Database, name: str) -> RegistryInfo | None:
        info = await read(database, name)  # the old allowlist, read before the change commits
        database.write_sync(_set_allowlist, registry_id, ["192.0.2.0/24"])
        memory.forget()
        return info

    monkeypatch.setattr(rows, "info_by_name", read_then_change)
    assert (await memory.by_name(db, "alpha")).allowlist == ("10.0.0.0/8",)  # type: ignore[union-attr]
    monkeypatch.setattr(rows, "info_by_name", read)
    assert (await memory.by_name(db, "alpha")).allowlist == ("192.0.2.0/24",)  # type: ignore[union-attr]


async def test_the_memory_keeps_each_database_apart(
    db: Database, contract_number: int, tmp_path: Path, sqlite_template: Path
) -> None:
    import shutil

    from cargobay.db.queries import registries as rows
    from cargobay.services import tenancy

    other_path = tmp_path / "other.db"
    shutil.copyfile(sqlite_template, other_path)
    other = Database(f"sqlite:///{other_path}")
    try:
        other_contract = other.write_sync(lambda s: tenancy.create_contract(s, "other").number)
        here = db.write_sync(_create, contract_number, "alpha")
        there = other.write_sync(_create, other_contract, "alpha")
        memory = rows.InfoMemory()
        assert (await memory.by_name(db, "alpha")).id == here  # type: ignore[union-attr]
        assert (await memory.by_name(other, "alpha")).id == there  # type: ignore[union-attr]
        assert (await memory.by_name(db, "alpha")).id == here  # type: ignore[union-attr]
    finally:
        other.dispose()
