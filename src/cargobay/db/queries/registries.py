"""Registries: the registry API's per-request view, lookups, and what a tenant holds."""

from __future__ import annotations

import json
import time
import weakref
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete as delete_rows
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from cargobay.db.engine import Database, RawTx
from cargobay.db.models import Contract, Registry
from cargobay.db.types import utcnow
from cargobay.domain.registries import RegistryInfo

_INFO = "SELECT id, name, contract_number, allowlist FROM registries"


async def info_by_name(db: Database, name: str) -> RegistryInfo | None:
    """One indexed read (``INFO_MEMORY.by_name`` remembers it on the hot path)."""
    return _info(await db.fetch_one(f"{_INFO} WHERE name = ?", name))


INFO_SECONDS = 1.0  # how long a process remembers a registry's id, contract and allowlist by name
_REMEMBERED_INFOS = 10_000


class InfoMemory:
    """Each process's memory of ``info_by_name``: at most ``INFO_SECONDS`` old.

    Every registry request needs its registry's id and allowlist, which change only when the
    registry is replaced, patched or deleted. A change made through this process is seen at once
    (``forget`` after the commit; a read that raced it is dropped by the generation it started
    in); one made through another process within ``INFO_SECONDS``, the bound the README states
    for every per-process memory. Unknown names are not remembered (a registry created elsewhere
    is found on the next request, and names nobody has cannot fill the memory).
    """

    def __init__(self) -> None:
        # per database: a process (a test run, say) may hold several installations
        self._known: weakref.WeakKeyDictionary[Database, dict[str, tuple[float, int, RegistryInfo]]]
        self._known = weakref.WeakKeyDictionary()
        self._generation = 0

    async def by_name(self, db: Database, name: str) -> RegistryInfo | None:
        now = time.monotonic()
        known_here = self._known.get(db)
        if known_here is None:
            known_here = self._known[db] = {}
        known = known_here.get(name)
        if known is not None and known[0] > now and known[1] == self._generation:
            return known[2]
        generation = self._generation
        info = await info_by_name(db, name)
        if info is None:
            known_here.pop(name, None)
        elif generation == self._generation:
            if len(known_here) >= _REMEMBERED_INFOS:
                known_here.clear()
            known_here[name] = (now + INFO_SECONDS, generation, info)
        return info

    def forget(self) -> None:
        """After a commit that replaced, patched or deleted a registry in this process."""
        self._generation += 1
        self._known.clear()


INFO_MEMORY = InfoMemory()


async def info_by_id(db: Database, registry_id: str) -> RegistryInfo | None:
    return _info(await db.fetch_one(f"{_INFO} WHERE id = ?", registry_id))


def info_by_id_in(session: Session, registry_id: str) -> RegistryInfo | None:
    """The same view inside a unit of work."""
    row = session.execute(
        select(Registry.id, Registry.name, Registry.contract_number, Registry.allowlist).where(
            Registry.id == registry_id
        )
    ).first()
    return _info(tuple(row)) if row is not None else None


def infos_of_contract(
    session: Session, contract_number: int, start: str | None = None, inclusive: bool = True, limit: int = 500
) -> list[RegistryInfo]:
    """A tenant's registries in name order from ``start`` (on the (contract, name) index)."""
    query = select(Registry.id, Registry.name, Registry.contract_number, Registry.allowlist).where(
        Registry.contract_number == contract_number
    )
    if start is not None:
        query = query.where(Registry.name >= start if inclusive else Registry.name > start)
    rows = session.execute(query.order_by(Registry.name).limit(limit))
    return [info for row in rows if (info := _info(tuple(row))) is not None]


def _info(row: tuple[Any, ...] | None) -> RegistryInfo | None:
    if row is None:
        return None
    allowlist = row[3]
    if isinstance(allowlist, str):
        allowlist = json.loads(allowlist)
    return RegistryInfo(row[0], row[1], row[2], tuple(allowlist or ()))


def get(session: Session, registry_id: str) -> Registry | None:
    return session.get(Registry, registry_id)


def get_by_name(session: Session, name: str) -> Registry | None:
    return session.scalar(select(Registry).where(Registry.name == name))


def name_taken(session: Session, name: str) -> bool:
    return session.scalar(select(Registry.id).where(Registry.name == name)) is not None


def contract_exists(session: Session, contract_number: int) -> bool:
    return session.get(Contract, contract_number) is not None


def contract_numbers(session: Session) -> list[int]:
    return list(session.scalars(select(Contract.number).order_by(Contract.number)))


def add_storage(tx: RawTx, registry_id: str, delta: int) -> None:
    """Count ``delta`` bytes more (or fewer) against the registry's storage usage.

    Every writer of a registry's content updates this one row: make it the last statement of the
    transaction, so that no transaction holds it while waiting for another lock (PostgreSQL would
    see the cycle as a deadlock).
    """
    if delta:
        tx.run(
            "UPDATE registries SET storage_bytes = storage_bytes + ?, storage_updated_at = ? WHERE id = ?",
            delta,
            tx.timestamp(utcnow()),
            registry_id,
        )


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    registry_id: str
    days: tuple[str, ...]
    time: str
    since: datetime | None
    next_window_at: datetime | None


def schedules_due(session: Session, now: datetime) -> list[ScheduleRow]:
    """Registries with a GC schedule whose next window has come (or was never worked out)."""
    rows = session.execute(
        select(
            Registry.id,
            Registry.gc_days,
            Registry.gc_time,
            Registry.gc_schedule_since,
            Registry.gc_next_window_at,
        ).where(
            Registry.gc_time.is_not(None),
            (Registry.gc_next_window_at.is_(None)) | (Registry.gc_next_window_at <= now),
        )
    )
    return [ScheduleRow(r[0], tuple(r[1] or ()), r[2], r[3], r[4]) for r in rows]


def move_next_window(
    session: Session, registry_id: str, seen: datetime | None, next_window_at: datetime, time: str
) -> bool:
    """Advance the scheduler's next window from ``seen``; False when another scheduler (or a new
    schedule) moved it first."""
    query = update(Registry).where(Registry.id == registry_id, Registry.gc_time == time)
    query = query.where(
        Registry.gc_next_window_at.is_(None) if seen is None else Registry.gc_next_window_at == seen
    )
    result = session.execute(
        query.values(gc_next_window_at=next_window_at).execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def page_of_contract(
    session: Session, contract_number: int, name_filter: str | None, after: str | None, limit: int
) -> tuple[list[Registry], bool]:
    """A tenant's registries in name order after ``after`` (index ix_registries_contract_name); the
    flag says whether more remain."""
    query = select(Registry).where(Registry.contract_number == contract_number)
    if name_filter:
        escaped = name_filter.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(Registry.name.like(f"%{escaped.lower()}%", escape="\\"))
    if after is not None:
        query = query.where(Registry.name > after)
    rows = list(session.scalars(query.order_by(Registry.name).limit(limit + 1)))
    return rows[:limit], len(rows) > limit


def delete(session: Session, registry_id: str) -> None:
    """Remove the registry; tokens, repositories, manifests, tags and blob rows go by ON DELETE CASCADE."""
    session.execute(delete_rows(Registry).where(Registry.id == registry_id))
