"""Repository rows: lookup and lazy creation (a repository exists once something was pushed to it)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cargobay.db.models import Repository


def find(session: Session, registry_id: str, name: str) -> Repository | None:
    return session.scalar(
        select(Repository).where(Repository.registry_id == registry_id, Repository.name == name)
    )


def get_or_create(session: Session, registry_id: str, name: str) -> Repository:
    repository = find(session, registry_id, name)
    if repository is not None:
        return repository
    try:
        with session.begin_nested():
            repository = Repository(registry_id=registry_id, name=name)
            session.add(repository)
    except IntegrityError:  # created concurrently by another writer
        repository = find(session, registry_id, name)
        assert repository is not None
    return repository
