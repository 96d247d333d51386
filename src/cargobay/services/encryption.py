"""Switching encryption at rest on and off, and sealing the data stored while it was off.

Data written with ``CARGOBAY_ENCRYPTION=false`` stays readable after encryption is switched on;
``cargobay migrate`` seals it (blobs in place, atomically; manifest bodies row by row) and then
records that no plaintext remains, after which unsealed data is refused as tampering.
"""

from __future__ import annotations

from dataclasses import dataclass

import anyio.to_thread
from sqlalchemy.orm import Session

from cargobay.db.engine import Database
from cargobay.db.queries import manifests as manifest_queries
from cargobay.db.queries.encryption import encryption_state, has_data_keys
from cargobay.db.types import utcnow
from cargobay.logs import get_logger
from cargobay.services.manifests import manifest_context
from cargobay.storage.encrypted import EncryptedStore
from cargobay.storage.keys import UnknownNamespace
from cargobay.storage.sealing import Sealer, is_sealed

log = get_logger("cargobay.encryption")


class EncryptionRequired(RuntimeError):
    """Encryption is off, but sealed data exists that could then not be read."""


def record_plaintext_writes(db: Database) -> None:
    """At start with encryption off: refuse if sealed data exists, else note that plaintext may."""

    def work(session: Session) -> None:
        if has_data_keys(session):
            raise EncryptionRequired(
                "this installation holds encrypted data: it cannot run with CARGOBAY_ENCRYPTION=false"
            )
        state = encryption_state(session)
        if not state.plaintext_may_exist:
            state.plaintext_may_exist = True
            state.updated_at = utcnow()

    db.write_sync(work)


@dataclass
class SealReport:
    blobs: int = 0
    uploads: int = 0  # uploads in progress are not sealed: begun without encryption, they restart
    manifests: int = 0
    orphans: int = 0  # objects of registries that no longer exist: unreachable, left as they are


async def seal_plaintext_data(db: Database, store: EncryptedStore, sealer: Sealer) -> SealReport:
    """Seal every blob and manifest body stored in plaintext; then stop accepting plaintext.

    An upload begun while encryption was off cannot continue under it (its writer is not a sealing
    one): its next request answers BLOB_UPLOAD_UNKNOWN and drops its bytes, and the client starts over.
    """
    report = SealReport()
    async for key in store.plaintext_keys():
        try:
            if await store.seal_plaintext(key):
                report.blobs += 1
        except UnknownNamespace:
            report.orphans += 1
    last_id = 0
    while rows := await db.read(manifest_queries.bodies_after, last_id, 200):
        for manifest_id, registry_id, digest, body in rows:
            last_id = manifest_id
            if is_sealed(body):
                continue
            sealed = await sealer.seal(registry_id, manifest_context(digest), body)
            await db.write(manifest_queries.replace_body, manifest_id, body, sealed)
            report.manifests += 1
    if report.manifests and db.is_sqlite:
        await anyio.to_thread.run_sync(_compact_sqlite, db)
    await db.write(_no_plaintext_left)
    log.info("plaintext_sealed", **vars(report))
    return report


def _compact_sqlite(db: Database) -> None:
    """Rewrite the database file so free pages keep no copy of the bodies that were replaced."""
    connection = db.engine.raw_connection()
    try:
        sqlite = connection.driver_connection
        assert sqlite is not None
        sqlite.execute("VACUUM")
        sqlite.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        connection.close()


def _no_plaintext_left(session: Session) -> None:
    state = encryption_state(session)
    state.plaintext_may_exist = False
    state.updated_at = utcnow()
