"""Registries: creation and lookup shared by the CLI, the management API and the registry API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from cargobay.db.models import Contract, Registry
from cargobay.db.types import utcnow
from cargobay.domain.errors import Conflict, InvalidInput
from cargobay.domain.names import check_registry_name


class RegistryNameTaken(Conflict):
    def __init__(self, name: str) -> None:
        super().__init__(f"{name!r} is already in use; registry names are globally unique", field="name")


def create_registry(
    session: Session,
    *,
    contract_number: int,
    name: str,
    location: str,
    created_by: str = "",
    created_by_user_id: str = "",
    registry_id: str | None = None,
    gc_days: list[Any] | None = None,
    gc_time: str | None = None,
    gc_schedule_since: datetime | None = None,
    vulnerability_scanning: bool = True,
    allowlist: list[str] | None = None,
) -> Registry:
    """Insert a registry in state ``New``; ``mark_running`` finishes provisioning."""
    check_registry_name(name)
    if session.get(Contract, contract_number) is None:
        raise InvalidInput(f"{contract_number} does not exist", field="contract")
    if session.scalar(select(Registry.id).where(Registry.name == name)) is not None:
        raise RegistryNameTaken(name)
    registry = Registry(
        id=registry_id or str(uuid.uuid4()),
        contract_number=contract_number,
        name=name,
        location=location,
        state="New",
        gc_days=gc_days,
        gc_time=gc_time,
        gc_schedule_since=gc_schedule_since,
        vulnerability_scanning=vulnerability_scanning,
        allowlist=list(allowlist or []),
        created_by=created_by,
        created_by_user_id=created_by_user_id,
        storage_bytes=0,
        storage_updated_at=utcnow(),
    )
    session.add(registry)
    session.flush()
    return registry


def mark_running(session: Session, registry_id: str) -> None:
    registry = session.get(Registry, registry_id)
    if registry is not None and registry.state == "New":
        registry.state = "Running"


def get_by_name(session: Session, name: str) -> Registry | None:
    return session.scalar(select(Registry).where(Registry.name == name))


def hostname(name: str, domain: str | None, public_host: str) -> str:
    """``{name}.{domain}`` with a registry domain, else the path form ``host:port/{name}``."""
    return f"{name}.{domain}" if domain else f"{public_host}/{name}"
