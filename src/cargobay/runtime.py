"""The process-wide parts that every layer is wired with, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from cargobay.config import Settings
from cargobay.db.engine import Database
from cargobay.db.migrate import upgrade
from cargobay.storage.base import BlobStore
from cargobay.storage.factory import open_store
from cargobay.storage.sealing import PlainSealer, Sealer


@dataclass
class Runtime:
    settings: Settings
    db: Database
    store: BlobStore
    sealer: Sealer

    async def close(self) -> None:
        await self.store.close()
        self.db.dispose()


def build_runtime(settings: Settings, migrate: bool = True) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    if migrate:
        upgrade(db.engine)
    store = open_store(settings.resolved_storage_url)
    return Runtime(settings=settings, db=db, store=store, sealer=PlainSealer())
