"""Pull counts survive a flush that fails (a full disk, a database outage): nothing is lost."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from cargobay.db.engine import Database
from cargobay.db.models import Manifest, Repository
from cargobay.services.manifests import ManifestService
from cargobay.services.stats import PullRecorder
from cargobay.storage.sealing import PlainSealer
from tests.integration.db.test_content import OCI_MANIFEST, _blob, _image


async def _manifest(db: Database, registry_id: str) -> tuple[int, int]:
    config = _blob(db, registry_id, "app", b"{}")
    await ManifestService(db, PlainSealer()).put(registry_id, "app", "v1", _image(config, []), OCI_MANIFEST)
    row = db.read_sync(lambda s: s.execute(select(Manifest.id, Manifest.repository_id)).one())
    return int(row[0]), int(row[1])


async def test_counts_a_failed_flush_could_not_write_are_written_by_the_next(
    db: Database, registry_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest_id, repository_id = await _manifest(db, registry_id)
    recorder = PullRecorder(db)
    for _ in range(3):
        recorder.record(manifest_id, repository_id)
    real_write = db.write

    async def failing(fn: Any, *args: Any) -> Any:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(db, "write", failing)
    await recorder.flush()
    recorder.record(manifest_id, repository_id)
    monkeypatch.setattr(db, "write", real_write)
    await recorder.flush()
    counts = db.read_sync(
        lambda s: (s.get(Manifest, manifest_id).pull_count, s.get(Repository, repository_id).pull_count)
    )
    assert counts == (4, 4)
    pulled_at = db.read_sync(lambda s: s.get(Manifest, manifest_id).pulled_at)
    assert pulled_at is not None
