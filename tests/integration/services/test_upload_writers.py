"""Uploads through storage writers: chunks continue from the row on any service instance (process),
and a finish that crashed half-way is recovered from what the row and the store say."""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cargobay.db.engine import Database
from cargobay.db.queries import gc_objects
from cargobay.db.queries import uploads as upload_rows
from cargobay.domain.digests import Digest
from cargobay.domain.errors import DigestMismatch, RangeMismatch, UploadUnknown
from cargobay.services import object_deletions
from cargobay.services.blobs import BlobService
from cargobay.services.uploads import UploadService
from cargobay.storage.base import BlobStore
from cargobay.storage.encrypted import EncryptedStore
from cargobay.storage.filesystem import FilesystemStore, FileWriter
from tests.support.storage import StaticKeys, read_all

DATA = bytes(range(256)) * 9000  # 2.2 MiB: two whole segments and a partial one


async def body(data: bytes) -> AsyncIterator[bytes]:
    for start in range(0, len(data), 100_000):
        yield data[start : start + 100_000]


def digest(data: bytes, algorithm: str = "sha256") -> Digest:
    return Digest(algorithm, hashlib.new(algorithm, data).hexdigest())


@pytest.fixture(params=["filesystem", "encrypted"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    driver: BlobStore = FilesystemStore(tmp_path / "storage")
    if request.param == "encrypted":
        driver = EncryptedStore(driver, StaticKeys(), segment_size=4096)
    yield driver
    await driver.close()


def instances(db: Database, store: BlobStore) -> tuple[UploadService, UploadService]:
    """Two service instances sharing nothing but the database and the store (two processes)."""
    return UploadService(db, store, 3600), UploadService(db, store, 3600)


async def test_chunks_continue_on_another_instance_without_reading_back(
    db: Database, store: BlobStore, registry_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    one, two = instances(db, store)
    upload = await one.start(registry_id, "app")
    cuts = [0, 5000, 700_001, 1_500_000, len(DATA)]
    for i, (start, end) in enumerate(itertools.pairwise(cuts)):
        service = (one, two)[i % 2]
        found = await service.find(registry_id, "app", upload.id)
        assert await service.append(found, body(DATA[start:end]), (start, end - 1), None) == end

    def no_reads(*args: object, **kwargs: object) -> None:
        raise AssertionError("a finish read stored bytes back")

    monkeypatch.setattr(store, "reader", no_reads)
    blob = await one.finish(upload, digest(DATA), None, None, None)
    monkeypatch.undo()
    assert blob.size == len(DATA)
    assert await read_all(BlobService(db, store).open(blob)) == DATA


async def test_a_failed_chunk_leaves_the_upload_where_it_was(
    db: Database, store: BlobStore, registry_id: str
) -> None:
    service, _ = instances(db, store)
    upload = await service.start(registry_id, "app")
    await service.append(upload, body(DATA[:10_000]), None, None)

    async def broken() -> AsyncIterator[bytes]:
        yield b"junk" * 5000
        raise ConnectionError("client gone")

    with pytest.raises(ConnectionError):
        await service.append(upload, broken(), None, None)
    assert await service.size(upload) == 10_000
    with pytest.raises(RangeMismatch):
        await service.append(upload, body(DATA[20_000:]), (20_000, len(DATA) - 1), None)
    await service.append(upload, body(DATA[10_000:]), (10_000, len(DATA) - 1), None)
    blob = await service.finish(upload, digest(DATA), None, None, None)
    assert await read_all(BlobService(db, store).open(blob)) == DATA


async def test_a_finish_that_crashed_after_publishing_is_recorded(
    db: Database, store: BlobStore, registry_id: str
) -> None:
    service, _ = instances(db, store)
    upload = await service.start(registry_id, "app")
    await service.append(upload, body(DATA[:1_000_000]), None, None)
    recorded = await upload_rows.recorded(db, upload.id)
    assert recorded is not None and recorded.storage_state is not None
    writer = await store.writer(upload.final_key, json.loads(recorded.storage_state))
    await writer.write(DATA[1_000_000:])
    await writer.commit()  # ... and the process died before recording the blob
    blob = await service.finish(upload, digest(DATA), body(DATA[1_000_000:]), None, None)
    assert blob.size == len(DATA)
    assert await read_all(BlobService(db, store).open(blob)) == DATA


async def test_a_finish_that_crashed_after_dropping_a_known_digest_links_it(
    db: Database, store: BlobStore, registry_id: str
) -> None:
    service, _ = instances(db, store)
    stored = await service.monolithic(registry_id, "first", digest(DATA), body(DATA), None)
    upload = await service.start(registry_id, "second")
    await service.append(upload, body(DATA[:1_000_000]), None, None)
    recorded = await upload_rows.recorded(db, upload.id)
    assert recorded is not None and recorded.storage_state is not None
    await store.discard(upload.final_key, json.loads(recorded.storage_state))  # ... then it died
    with pytest.raises(DigestMismatch):  # the client must prove it has the content
        await service.finish(upload, digest(DATA), body(DATA[1_000_000:-1] + b"?"), None, None)
    blob = await service.finish(upload, digest(DATA), body(DATA[1_000_000:]), None, None)
    assert blob.id == stored.id
    assert await BlobService(db, store).stat(registry_id, "second", str(digest(DATA))) is not None


async def test_a_finish_that_linked_a_known_digest_and_died_leaves_its_bytes_to_the_outbox(
    db: Database, store: BlobStore, registry_id: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session ends in the transaction that links the stored blob; the upload's own bytes are
    deleted after it. A crash in between (seen in the crash-safety test under load) left them with
    nothing naming them; now the same transaction queues them in the deletion outbox, which garbage
    collection drains."""
    service, _ = instances(db, store)
    stored = await service.monolithic(registry_id, "first", digest(DATA), body(DATA), None)
    upload = await service.start(registry_id, "second")
    await service.append(upload, body(DATA[:1_000_000]), None, None)
    staging = tmp_path / "storage" / "staging"
    assert [p for p in staging.rglob("*") if p.is_file()]

    async def died(self: object) -> None:
        raise RuntimeError("the process died here")

    monkeypatch.setattr(FileWriter, "cancel", died)
    with pytest.raises(RuntimeError, match="died here"):
        await service.finish(upload, digest(DATA), body(DATA[1_000_000:]), None, None)
    monkeypatch.undo()

    linked = await BlobService(db, store).stat(registry_id, "second", str(digest(DATA)))
    assert linked is not None and linked.object_key == stored.object_key
    assert await upload_rows.recorded(db, upload.id) is None  # the session ended with the link
    assert [p for p in staging.rglob("*") if p.is_file()]  # its bytes are still there ...
    pending = await gc_objects.pending_deletions(db, registry_id, 0, 10)
    assert [(item.key, item.staged) for item in pending] == [(upload.object_key, True)]  # ... queued
    assert await object_deletions.drain(db, store, registry_id) == 1  # as a collection does
    assert not [p for p in staging.rglob("*") if p.is_file()]
    assert await gc_objects.pending_deletions(db, registry_id, 0, 10) == []


async def test_a_finish_that_links_a_known_digest_deletes_its_bytes_and_the_outbox_row(
    db: Database, store: BlobStore, registry_id: str, tmp_path: Path
) -> None:
    service, _ = instances(db, store)
    await service.monolithic(registry_id, "first", digest(DATA), body(DATA), None)
    upload = await service.start(registry_id, "second")
    await service.append(upload, body(DATA[:1_000_000]), None, None)
    await service.finish(upload, digest(DATA), body(DATA[1_000_000:]), None, None)
    assert not [p for p in (tmp_path / "storage" / "staging").rglob("*") if p.is_file()]
    assert await gc_objects.pending_deletions(db, registry_id, 0, 10) == []


async def test_lost_bytes_of_an_unknown_digest_end_the_upload(
    db: Database, store: BlobStore, registry_id: str
) -> None:
    service, _ = instances(db, store)
    upload = await service.start(registry_id, "app")
    await service.append(upload, body(DATA[:1_000_000]), None, None)
    recorded = await upload_rows.recorded(db, upload.id)
    assert recorded is not None and recorded.storage_state is not None
    await store.discard(upload.final_key, json.loads(recorded.storage_state))
    with pytest.raises(UploadUnknown):
        await service.finish(upload, digest(DATA), body(DATA[1_000_000:]), None, None)
    with pytest.raises(UploadUnknown):
        await service.find(registry_id, "app", upload.id)


async def test_sha512_content_is_verified_before_it_is_linked(
    db: Database, store: BlobStore, registry_id: str
) -> None:
    service, _ = instances(db, store)
    await service.monolithic(registry_id, "first", digest(DATA, "sha512"), body(DATA), None)
    upload = await service.start(registry_id, "second")
    with pytest.raises(DigestMismatch):
        await service.finish(upload, digest(DATA, "sha512"), body(DATA[:-1] + b"?"), None, None)
    assert await BlobService(db, store).stat(registry_id, "second", str(digest(DATA, "sha512"))) is None
