"""A manifest push racing the transaction that deletes one of its blobs, forced in both orders, on
SQLite (one writer: the second waits) and PostgreSQL (row locks: the push waits, or the collector
skips the blob): the push either wins and the blob stays, or it is refused with
MANIFEST_BLOB_UNKNOWN and nothing points at a missing blob."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from cargobay.db.engine import Database, RawTx
from cargobay.db.models import Blob, Manifest
from cargobay.db.queries import gc as gc_queries
from cargobay.db.types import utcnow
from cargobay.domain.digests import Digest
from cargobay.domain.errors import ManifestBlobUnknown
from cargobay.domain.manifests import parse_manifest
from cargobay.runtime import Runtime
from cargobay.services.manifests import _store_manifest
from tests.support.gc import OCI_CONFIG, OCI_MANIFEST, check_references_intact, make_runtime, upload


@pytest.fixture
def rt(db: Database, db_url: str, tmp_path: Path) -> Runtime:
    return make_runtime(db, db_url, tmp_path, gc_sweep_keys_per_second=0)


def _manifest(config: dict[str, object]) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, **config},
            "layers": [],
        }
    ).encode()


def _push(rt: Runtime, registry_id: str, body: bytes) -> BaseException | None:
    try:
        asyncio.run(rt.services.manifests.put(registry_id, "app", "v1", body, OCI_MANIFEST))
    except BaseException as exc:
        return exc
    return None


async def test_a_push_waiting_on_a_collection_is_refused_cleanly(rt: Runtime, registry_id: str) -> None:
    config = await upload(rt, registry_id, "app", b"{}")
    inside, release = threading.Event(), threading.Event()
    freed: list[int] = []

    def collect(session):  # type: ignore[no-untyped-def]
        batch = gc_queries.collect_blobs(RawTx.of(session), registry_id, utcnow(), None, 10)
        freed.append(len(batch.freed))
        inside.set()
        release.wait(30)

    collector = threading.Thread(target=rt.db.write_sync, args=(collect,))
    collector.start()
    assert inside.wait(30)
    outcome: list[BaseException | None] = []
    pusher = threading.Thread(target=lambda: outcome.append(_push(rt, registry_id, _manifest(config))))
    pusher.start()
    pusher.join(1.0)
    assert pusher.is_alive(), "the push should wait for the deleting transaction"
    release.set()
    collector.join(30)
    pusher.join(30)
    assert freed == [1]
    assert isinstance(outcome[0], ManifestBlobUnknown)
    assert rt.db.read_sync(lambda s: s.scalars(select(Manifest)).all()) == []


async def test_a_collection_meeting_a_push_in_progress_keeps_the_blob(rt: Runtime, registry_id: str) -> None:
    config = await upload(rt, registry_id, "app", b"{}")
    inside, release = threading.Event(), threading.Event()

    body = _manifest(config)
    digest = str(Digest.of(body))
    parsed = parse_manifest(body, OCI_MANIFEST)

    def push_holding(session):  # type: ignore[no-untyped-def]
        result = _store_manifest(session, registry_id, "app", digest, parsed, body, body, ["v1"])
        inside.set()
        release.wait(30)  # the manifest row and its references are written, not yet committed
        return result

    pusher = threading.Thread(target=rt.db.write_sync, args=(push_holding,))
    pusher.start()
    assert inside.wait(30)
    batches: list[gc_queries.BlobBatch] = []

    def collect(session):  # type: ignore[no-untyped-def]
        batches.append(gc_queries.collect_blobs(RawTx.of(session), registry_id, utcnow(), None, 10))

    collector = threading.Thread(target=rt.db.write_sync, args=(collect,))
    collector.start()
    collector.join(1.0)
    if rt.db.is_sqlite:
        assert collector.is_alive(), "SQLite: the collector waits for the one writer"
    release.set()
    pusher.join(30)
    collector.join(30)
    batch = batches[0]
    assert not batch.freed
    if rt.db.is_sqlite:
        assert batch.kept == 1  # waited, re-checked: referenced now
    else:  # the push holds the review row (postponed) and the blob (FOR SHARE): the collector skips
        assert batch.examined == 0 or batch.skipped == 1
    await rt.services.manifests.put(registry_id, "app", "v2", body, OCI_MANIFEST)  # pushed again: fine
    assert rt.db.read_sync(lambda s: s.scalars(select(Blob.digest)).all()) == [config["digest"]]
    assert await check_references_intact(rt) == 1
