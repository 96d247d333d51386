"""A runtime over a fresh database (SQLite and PostgreSQL), an encrypted filesystem store, and helpers
to push images through the services and run the job worker until the queue is empty."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cargobay.config import Settings
from cargobay.db.engine import Database
from cargobay.domain.digests import Digest
from cargobay.jobs.queue import JobQueue
from cargobay.runtime import Runtime, assemble
from cargobay.storage.encrypted import EncryptedStore
from cargobay.storage.filesystem import FilesystemStore
from cargobay.storage.sealing import AeadSealer
from cargobay.worker import JobRunner, build_jobs
from tests.support.storage import StaticKeys
from tests.support.vulnimages import one


@pytest.fixture
def runtime(db: Database, db_url: str, tmp_path: Path) -> Runtime:
    keys = StaticKeys()
    settings = Settings(data_dir=tmp_path, database_url=db_url)
    store = EncryptedStore(FilesystemStore(tmp_path / "storage"), keys)
    return assemble(settings, db, store, AeadSealer(keys))


@dataclass
class Pusher:
    runtime: Runtime
    registry_id: str

    async def blob(self, repository: str, data: bytes, registry_id: str | None = None) -> None:
        await self.runtime.services.uploads.monolithic(
            registry_id or self.registry_id, repository, Digest.of(data), one(data), len(data)
        )

    async def manifest(
        self, repository: str, reference: str, body: bytes, media_type: str, registry_id: str | None = None
    ) -> str:
        result = await self.runtime.services.manifests.put(
            registry_id or self.registry_id, repository, reference, body, media_type
        )
        return result.digest

    async def image(
        self,
        repository: str,
        tag: str,
        layers: list[bytes],
        config: bytes,
        manifest: bytes,
        registry_id: str | None = None,
    ) -> str:
        for data in (config, *layers):
            await self.blob(repository, data, registry_id)
        return await self.manifest(
            repository, tag, manifest, "application/vnd.oci.image.manifest.v1+json", registry_id
        )


@pytest.fixture
def push(runtime: Runtime, registry_id: str) -> Pusher:
    return Pusher(runtime, registry_id)


async def run_jobs(runtime: Runtime) -> int:
    """Run every due job of Cargobay's kinds until none is left."""
    runner = JobRunner(JobQueue(runtime.db), build_jobs(runtime).handlers, concurrency=2)
    return await runner.run_until_idle()


def jobs_of(db: Database, kind: str) -> list[Any]:
    from sqlalchemy import select

    from cargobay.db.models import Job

    return db.read_sync(lambda s: list(s.scalars(select(Job).where(Job.kind == kind).order_by(Job.id))))
