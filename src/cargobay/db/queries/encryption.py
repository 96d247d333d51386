"""Encryption at rest: the state every process agrees on, and the registries' wrapped data keys."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from cargobay.db.models import EncryptionState, Registry, SigningKey
from cargobay.db.types import utcnow

STATE_ID = 1


def wrapped_key(session: Session, registry_id: str) -> tuple[bytes | None, str | None] | None:
    row = session.execute(
        select(Registry.wrapped_data_key, Registry.master_key_id).where(Registry.id == registry_id)
    ).first()
    return None if row is None else (row[0], row[1])


def active_key_id(session: Session) -> str | None:
    """The master key new data keys are wrapped with; None before encryption was first started."""
    return session.scalar(select(EncryptionState.active_master_key_id).where(EncryptionState.id == STATE_ID))


def store_new_key(session: Session, registry_id: str, wrapped: bytes, key_id: str) -> bool:
    """Store a new wrapped data key unless one exists; False if the active master key changed meanwhile.

    The active key is read with a share lock, so a rotation that switches it waits for this
    transaction, and no data key is ever wrapped under a key the rotation has left behind.
    """
    active = session.scalar(
        select(EncryptionState.active_master_key_id)
        .where(EncryptionState.id == STATE_ID)
        .with_for_update(read=True)
    )
    if active != key_id:
        return False
    session.execute(
        update(Registry)
        .where(Registry.id == registry_id, Registry.wrapped_data_key.is_(None))
        .values(wrapped_data_key=wrapped, master_key_id=key_id)
    )
    return True


def encryption_state(session: Session) -> EncryptionState:
    state = session.get(EncryptionState, STATE_ID, with_for_update=True)
    if state is None:  # the migration creates it; recreated, it cannot vouch that no plaintext exists
        state = EncryptionState(id=STATE_ID, plaintext_may_exist=True, updated_at=utcnow())
        session.add(state)
    return state


def has_data_keys(session: Session) -> bool:
    return (
        session.scalar(select(Registry.id).where(Registry.wrapped_data_key.is_not(None)).limit(1)) is not None
    )


def master_key_ids_in_use(session: Session) -> set[str]:
    """Master keys that wrap a registry's data key or a signing key."""
    rows = session.scalars(
        select(Registry.master_key_id).where(Registry.wrapped_data_key.is_not(None)).distinct()
    )
    signing = session.scalars(select(SigningKey.master_key_id).distinct())
    return {r for r in [*rows, *signing] if r is not None}


def set_active_key(session: Session, key_id: str) -> None:
    state = encryption_state(session)
    if state.active_master_key_id != key_id:
        state.active_master_key_id = key_id
        state.updated_at = utcnow()


def wrapped_elsewhere(session: Session, key_id: str, limit: int) -> list[str]:
    return list(
        session.scalars(
            select(Registry.id)
            .where(Registry.wrapped_data_key.is_not(None))
            .where((Registry.master_key_id != key_id) | Registry.master_key_id.is_(None))
            .order_by(Registry.id)
            .limit(limit)
        )
    )


def wrapped_key_for_update(session: Session, registry_id: str) -> tuple[bytes | None, str | None] | None:
    """The registry's wrapped data key and the master key that wraps it, locked for a re-wrap."""
    row = session.execute(
        select(Registry.wrapped_data_key, Registry.master_key_id)
        .where(Registry.id == registry_id)
        .with_for_update()
    ).first()
    return None if row is None else (row[0], row[1])


def replace_wrapped_key(session: Session, registry_id: str, old: bytes, new: bytes, key_id: str) -> None:
    """Store a re-wrapped data key, unless someone replaced the old one meanwhile."""
    session.execute(
        update(Registry)
        .where(Registry.id == registry_id, Registry.wrapped_data_key == old)
        .values(wrapped_data_key=new, master_key_id=key_id)
    )


def signing_key(session: Session, name: str) -> tuple[bytes, str | None] | None:
    row = session.get(SigningKey, name)
    return (row.secret, row.master_key_id) if row is not None else None


def add_signing_key(session: Session, name: str, secret: bytes, master_key_id: str | None) -> None:
    """Store a signing key unless one of that name exists (the first process to start wins)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(SigningKey)
        .values(name=name, secret=secret, master_key_id=master_key_id, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=[SigningKey.name])
    )


def replace_signing_key(session: Session, name: str, old: bytes, new: bytes, master_key_id: str) -> None:
    """Store a signing key wrapped anew, unless someone replaced it meanwhile."""
    session.execute(
        update(SigningKey)
        .where(SigningKey.name == name, SigningKey.secret == old)
        .values(secret=new, master_key_id=master_key_id)
    )


def signing_keys_elsewhere(session: Session, key_id: str) -> list[str]:
    """Signing keys not (yet) wrapped by ``key_id``."""
    return list(
        session.scalars(
            select(SigningKey.name).where(
                (SigningKey.master_key_id != key_id) | SigningKey.master_key_id.is_(None)
            )
        )
    )
