"""The schedule a registry keeps for the scheduler: ``gc_schedule_since`` records when it was set or
changed, and a change makes the scheduler work the next window out again (from that moment)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from cargobay.auth.principals import UserPrincipal
from cargobay.db.engine import Database
from cargobay.db.models import Registry
from cargobay.db.types import utcnow
from cargobay.domain.schedule import WeeklySchedule
from cargobay.services.registry_admin import RegistryAdmin, RegistryChanges, RegistrySpec
from cargobay.storage.filesystem import FilesystemStore


def _row(db: Database, registry_id: str) -> tuple[object, object, object, object]:
    def read(session):  # type: ignore[no-untyped-def]
        row = session.get(Registry, registry_id)
        return row.gc_days, row.gc_time, row.gc_schedule_since, row.gc_next_window_at

    return db.read_sync(read)


async def test_a_changed_schedule_restarts_the_scheduler_from_the_change(
    db: Database, contract_number: int, tmp_path: Path
) -> None:
    admin = RegistryAdmin(db, FilesystemStore(tmp_path / "blobs"))
    owner = UserPrincipal("u", "owner@example.com", contract_number, "owner", False)
    monday = WeeklySchedule(("Monday",), "01:00:00Z")
    view = await admin.create(owner, RegistrySpec("sched-one", "de/fra", monday, True, ()))
    days, time_of_day, since, next_at = _row(db, view.id)
    assert (days, time_of_day, next_at) == (["Monday"], "01:00:00Z", None) and since is not None

    planned = utcnow() + timedelta(days=3)  # what a scheduler tick would have recorded
    db.write_sync(
        lambda s: s.execute(update(Registry).where(Registry.id == view.id).values(gc_next_window_at=planned))
    )
    await admin.patch(owner, view.id, RegistryChanges(schedule=WeeklySchedule(("Monday",), "01:00:00Z")))
    assert _row(db, view.id)[2:] == (since, planned)  # the same schedule: nothing to work out again

    await admin.patch(owner, view.id, RegistryChanges(schedule=WeeklySchedule(("Friday",), "01:00:00Z")))
    days, _, changed, next_at = _row(db, view.id)
    assert days == ["Friday"] and changed is not None and changed > since and next_at is None

    await admin.patch(owner, view.id, RegistryChanges(schedule=None))
    assert _row(db, view.id) == (None, None, None, None)
