"""The process-wide parts that every layer is wired with, built once from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from cargobay.config import Settings
from cargobay.db.engine import Database
from cargobay.db.migrate import upgrade
from cargobay.services.encryption import record_plaintext_writes
from cargobay.services.keys import DataKeys, activate, open_master_key_file
from cargobay.storage.base import BlobStore
from cargobay.storage.encrypted import EncryptedStore
from cargobay.storage.factory import open_store
from cargobay.storage.keys import MasterKeyFile
from cargobay.storage.sealing import AeadSealer, PlainSealer, Sealer


@dataclass
class Runtime:
    settings: Settings
    db: Database
    store: BlobStore
    sealer: Sealer
    master_keys: MasterKeyFile | None = None  # None when encryption at rest is off

    async def close(self) -> None:
        await self.store.close()
        self.db.dispose()


def build_runtime(settings: Settings, migrate: bool = True) -> Runtime:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    if migrate:
        upgrade(db.engine)
    store = open_store(settings.resolved_storage_url)
    if not settings.encryption:
        record_plaintext_writes(db)
        return Runtime(settings=settings, db=db, store=store, sealer=PlainSealer())
    master_keys = open_master_key_file(
        db, settings.resolved_master_key_file, configured=settings.master_key_file is not None
    )
    _, plaintext_may_exist = activate(db, master_keys)
    keys = DataKeys(db, master_keys)
    return Runtime(
        settings=settings,
        db=db,
        store=EncryptedStore(store, keys, allow_plaintext=plaintext_may_exist),
        sealer=AeadSealer(keys, allow_plaintext=plaintext_may_exist),
        master_keys=master_keys,
    )
