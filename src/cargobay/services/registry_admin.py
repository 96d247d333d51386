"""Registry lifecycle for the management API: list, create, replace, patch, delete, name checks.

Rules: names are globally unique and immutable, and so is the location; vulnerability scanning is
on unless asked otherwise at creation and can never be switched off once on; a new registry answers
``New`` and is ``Running`` right after (provisioning is instant here).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from cargobay.auth.principals import UserPrincipal
from cargobay.db.engine import Database, RawTx
from cargobay.db.models import Registry
from cargobay.db.queries import gc
from cargobay.db.queries import registries as registry_rows
from cargobay.db.queries.registries import contract_numbers
from cargobay.db.types import utcnow
from cargobay.domain.allowlist import validate_allowlist
from cargobay.domain.errors import Conflict, InvalidInput, NotFound, fields_under
from cargobay.domain.names import check_registry_name, is_registry_name
from cargobay.domain.patching import UNSET, Maybe
from cargobay.domain.schedule import WeeklySchedule, parse_schedule
from cargobay.jobs.queue import enqueue
from cargobay.logs import get_logger
from cargobay.services import object_deletions, registries
from cargobay.services.ownership import require_manager, visible_registry
from cargobay.services.scan_jobs import on_scanning_enabled
from cargobay.storage.base import BlobStore

log = get_logger("cargobay.registry_admin")


@dataclass(frozen=True, slots=True)
class RegistryView:
    id: str
    name: str
    location: str
    state: str
    schedule: WeeklySchedule | None
    vulnerability_scanning: bool
    allowlist: tuple[str, ...]
    storage_bytes: int
    storage_updated_at: datetime | None
    created_at: datetime
    created_by: str
    created_by_user_id: str
    modified_at: datetime | None
    modified_by: str | None
    modified_by_user_id: str | None


@dataclass(frozen=True, slots=True)
class RegistrySpec:
    """The full desired state of a registry (POST and PUT)."""

    name: str
    location: str
    schedule: WeeklySchedule | None
    vulnerability_scanning: bool
    allowlist: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RegistryChanges:
    """A PATCH: UNSET leaves a field as it is; ``schedule=None`` removes the schedule."""

    schedule: Maybe[WeeklySchedule | None] = UNSET
    vulnerability_scanning: Maybe[bool] = UNSET
    allowlist: Maybe[tuple[str, ...]] = UNSET


@dataclass(frozen=True, slots=True)
class Saved:
    view: RegistryView
    created: bool


def _schedule_of(registry: Registry) -> WeeklySchedule | None:
    if registry.gc_time is None:
        return None
    return WeeklySchedule(tuple(registry.gc_days or ()), registry.gc_time)


def view_of(registry: Registry) -> RegistryView:
    schedule = _schedule_of(registry)
    return RegistryView(
        id=registry.id,
        name=registry.name,
        location=registry.location,
        state=registry.state,
        schedule=schedule,
        vulnerability_scanning=registry.vulnerability_scanning,
        allowlist=tuple(registry.allowlist or ()),
        storage_bytes=int(registry.storage_bytes or 0),
        storage_updated_at=registry.storage_updated_at,
        created_at=registry.created_at,
        created_by=registry.created_by,
        created_by_user_id=registry.created_by_user_id,
        modified_at=registry.modified_at,
        modified_by=registry.modified_by,
        modified_by_user_id=registry.modified_by_user_id,
    )


def parse_spec(
    *,
    name: object,
    location: object,
    schedule: tuple[object, object] | None,
    scanning: bool | None,
    allowlist: object,
    locations: Sequence[str],
) -> RegistrySpec:
    """Validate a registry's full desired state; every error names its field (``name``, ``location``,
    ``garbageCollectionSchedule.days[i]``, ``apiSubnetAllowList[i]``…)."""
    if not isinstance(name, str):
        raise InvalidInput("is required: the registry name", field="name")
    check_registry_name(name)
    return RegistrySpec(
        name=name,
        location=check_location(location, locations),
        schedule=schedule_of(schedule),
        vulnerability_scanning=True if scanning is None else scanning,
        allowlist=tuple(validate_allowlist(allowlist)),
    )


def schedule_of(schedule: tuple[object, object] | None) -> WeeklySchedule | None:
    """A ``(days, time)`` pair as given, or None for no schedule."""
    if schedule is None:
        return None
    with fields_under("garbageCollectionSchedule"):
        return parse_schedule(*schedule)


def check_location(location: object, locations: Sequence[str], field: str = "location") -> str:
    if not isinstance(location, str) or not location:
        raise InvalidInput(f"is required: one of {', '.join(locations)}", field=field)
    if location not in locations:
        raise InvalidInput(
            f"{location[:40]!r} is not a known location; use one of {', '.join(locations)}", field=field
        )
    return location


class RegistryAdmin:
    def __init__(self, db: Database, store: BlobStore) -> None:
        self.db = db
        self.store = store

    async def name_in_use(self, name: str) -> bool:
        """True when taken (by any contract: names are global); 400 when the name breaks the rules."""
        if not is_registry_name(name):
            check_registry_name(name, "name")
        return await self.db.read(lambda s: registries.get_by_name(s, name) is not None)

    async def list(
        self, actor: UserPrincipal, name_filter: str | None, limit: int, after: str | None
    ) -> tuple[list[RegistryView], bool]:
        """One page in name order after ``after``; the flag says whether more remain."""

        def work(session: Session) -> tuple[list[RegistryView], bool]:
            rows, more = registry_rows.page_of_contract(
                session, actor.contract_number, name_filter, after, limit
            )
            return [view_of(r) for r in rows], more

        return await self.db.read(work)

    async def create_as_operator(self, contract_number: int | None, name: str, location: str) -> RegistryView:
        """A registry made by the operator (the CLI), in ``contract_number`` or else the only contract."""

        def work(session: Session) -> RegistryView:
            number = contract_number
            if number is None:
                numbers = contract_numbers(session)
                if len(numbers) != 1:
                    raise InvalidInput(
                        "several contracts exist: pass --contract" if numbers else "no contract exists"
                    )
                number = numbers[0]
            registry = registries.create_registry(
                session, contract_number=number, name=name, location=location
            )
            registries.mark_running(session, registry.id)
            return view_of(registry)

        try:
            return await self.db.write(work)
        except IntegrityError:  # a concurrent create won the name
            raise _name_taken(name) from None

    async def get(self, actor: UserPrincipal, registry_id: str) -> RegistryView:
        return await self.db.read(lambda s: view_of(visible_registry(s, actor, registry_id)))

    async def create(
        self, actor: UserPrincipal, spec: RegistrySpec, registry_id: str | None = None
    ) -> RegistryView:
        require_manager(actor, "create registries")
        try:
            return await self.db.write(_create, actor, spec, registry_id)
        except IntegrityError:  # a concurrent create won the name
            raise _name_taken(spec.name) from None

    async def put(self, actor: UserPrincipal, registry_id: str, spec: RegistrySpec) -> Saved:
        """Create with the client's id, or replace what may change (name and location may not)."""
        require_manager(actor, "create or replace registries")

        def work(session: Session) -> Saved:
            existing = registry_rows.get(session, registry_id)
            if existing is None:
                return Saved(_create(session, actor, spec, registry_id), True)
            if existing.contract_number != actor.contract_number:
                raise NotFound("registry", registry_id)
            if spec.name != existing.name:
                raise InvalidInput(
                    f"cannot change: registry {registry_id} is named {existing.name!r}", field="name"
                )
            if spec.location != existing.location:
                raise InvalidInput(
                    f"cannot change: registry {registry_id} is in {existing.location!r}", field="location"
                )
            changes = RegistryChanges(spec.schedule, spec.vulnerability_scanning, spec.allowlist)
            _apply(existing, changes, actor)
            session.flush()
            return Saved(view_of(existing), False)

        try:
            return await self.db.write(work)
        except IntegrityError:  # a concurrent create won the name or the id
            raise _name_taken(spec.name) from None
        finally:
            registry_rows.INFO_MEMORY.forget()

    async def patch(self, actor: UserPrincipal, registry_id: str, changes: RegistryChanges) -> RegistryView:
        def work(session: Session) -> RegistryView:
            registry = visible_registry(session, actor, registry_id)
            require_manager(actor, "change registries")
            _apply(registry, changes, actor)
            session.flush()
            return view_of(registry)

        try:
            return await self.db.write(work)
        finally:
            registry_rows.INFO_MEMORY.forget()

    async def delete(self, actor: UserPrincipal, registry_id: str) -> None:
        """Remove the registry with everything in it, then its stored objects.

        In one transaction the objects its blobs and uploads name are queued for deletion (with a
        job that deletes them), and the rows go (tokens, repositories, manifests, tags and blob rows
        cascade). The queued objects are deleted before answering, by their exact keys (no listing),
        so a registry re-created with the same id right after (ionosctl does that) never loses new
        data; a crash meanwhile leaves them to the job, and objects no row named to the GC sweep.
        """

        def work(session: Session) -> None:
            visible_registry(session, actor, registry_id)
            require_manager(actor, "delete registries")
            if gc.note_registry_removal(RawTx.of(session), registry_id):
                enqueue(session, "gc.deletions", {"registry_id": registry_id})
            registry_rows.delete(session, registry_id)

        try:
            await self.db.write(work)
        finally:
            registry_rows.INFO_MEMORY.forget()
        try:
            await object_deletions.drain(self.db, self.store, registry_id)
        except Exception:
            log.exception("registry_objects_delete_failed", registry_id=registry_id)


def _create(
    session: Session, actor: UserPrincipal, spec: RegistrySpec, registry_id: str | None
) -> RegistryView:
    if registries.get_by_name(session, spec.name) is not None:
        raise _name_taken(spec.name)
    registry = registries.create_registry(
        session,
        contract_number=actor.contract_number,
        name=spec.name,
        location=spec.location,
        created_by=actor.email,
        created_by_user_id=actor.user_id,
        registry_id=registry_id,
        gc_days=list(spec.schedule.days) if spec.schedule else None,
        gc_time=spec.schedule.time if spec.schedule else None,
        gc_schedule_since=utcnow() if spec.schedule else None,
        vulnerability_scanning=spec.vulnerability_scanning,
        allowlist=list(spec.allowlist),
    )
    view = view_of(registry)  # answered as "New" with no hostname yet ...
    registries.mark_running(session, registry.id)  # ... and running from now on
    return view


def _name_taken(name: str) -> Conflict:
    return registries.RegistryNameTaken(name)


def _apply(registry: Registry, changes: RegistryChanges, actor: UserPrincipal) -> None:
    if changes.vulnerability_scanning is not UNSET:
        if registry.vulnerability_scanning and not changes.vulnerability_scanning:
            raise InvalidInput(
                "cannot be switched off once it is on", field="features.vulnerabilityScanning.enabled"
            )
        session = object_session(registry)
        if changes.vulnerability_scanning and not registry.vulnerability_scanning and session is not None:
            on_scanning_enabled(session, registry.id)  # scan what the registry already holds
        registry.vulnerability_scanning = changes.vulnerability_scanning
    if changes.schedule is not UNSET and changes.schedule != _schedule_of(registry):
        # Garbage collection counts the windows since then: the ones before the change are not missed.
        registry.gc_days = list(changes.schedule.days) if changes.schedule else None
        registry.gc_time = changes.schedule.time if changes.schedule else None
        registry.gc_schedule_since = utcnow() if changes.schedule else None
        registry.gc_next_window_at = None  # the scheduler works out the first window after ``since``
    if changes.allowlist is not UNSET:
        registry.allowlist = list(changes.allowlist)
    registry.modified_at = utcnow()
    registry.modified_by = actor.email
    registry.modified_by_user_id = actor.user_id
